package io.vlmbatch.web;

import java.util.List;
import java.util.Map;

/** A page of a run's images (GET /api/runs/{runId}/results): total matching, and each image with every task's answer. */
public record ResultsPage(long total, int page, int size, List<Item> items) {

    /** answers: task name -> {answer, status, error, latencyMs}; metadata: what discovery recorded. */
    public record Item(long id, String itemKey, String uri, String status, String error, Integer width, Integer height,
                       Map<String, Object> metadata, Map<String, Object> answers) {}
}
