package io.vlmbatch.web;

import java.util.List;
import java.util.Map;

/**
 * A page of a run's results (GET /api/runs/{runId}/results): total entries matching, how many of them
 * are documents, and each entry. An entry is an image (an image file or an archive member) or a
 * document (a PDF, a TIFF stack, a PDF inside a ZIP...) whose pages are shown as one entry: its first
 * matching page, with {@link Document} summing up its pages. A document's pages are listed by
 * GET /api/runs/{runId}/documents/{itemId}, in the same shape with no documents.
 */
public record ResultsPage(long total, int page, int size, List<Item> items, long documents) {

    /**
     * answers: task name -> {answer, status, error, latencyMs}; metadata: what discovery recorded;
     * member, page: the lineage (empty / null for a plain image); document: null unless the entry stands
     * for a whole document.
     */
    public record Item(long id, String itemKey, String uri, String status, String error, Integer width, Integer height,
                       Map<String, Object> metadata, Map<String, Object> answers, String member, Integer page,
                       Document document) {

        Item withDocument(Document d) {
            return new Item(id, itemKey, uri, status, error, width, height, metadata, answers, member, page, d);
        }
    }

    /** name: the document's key (its pages' keys without "#pN"); the counts are of its matching pages. */
    public record Document(String name, long pages, long done, long failed, long pending) {}
}
