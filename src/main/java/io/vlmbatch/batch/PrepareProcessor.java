package io.vlmbatch.batch;

import io.vlmbatch.archive.ArchiveRejectedException;
import io.vlmbatch.archive.Extracted;
import io.vlmbatch.archive.PageExtractor;
import io.vlmbatch.image.ImagePreparer;
import io.vlmbatch.image.ImageRejectedException;
import io.vlmbatch.image.PreparedImage;
import io.vlmbatch.job.TaskSpec;
import io.vlmbatch.ledger.ContentHash;
import io.vlmbatch.ledger.ItemPrompts;
import io.vlmbatch.ledger.DocumentHashes;
import io.vlmbatch.source.ByteSources;
import io.vlmbatch.source.ImageFetcher;
import io.vlmbatch.store.WorkItem;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.springframework.batch.infrastructure.item.ItemProcessor;

/**
 * Fetches an image, decodes and resizes it (the inputs' ImagePreparer), and renders each task's prompt.
 * A page of a PDF or TIFF is rendered or decoded from its lineage, and an archive member streamed out of
 * its archive, one at a time (see {@link PageExtractor}). Whatever is wrong with one image or page
 * becomes that item's failure reason; the job goes on.
 */
public class PrepareProcessor implements ItemProcessor<WorkItem, PreparedItem> {
    private final ImageFetcher fetcher;
    private final ImagePreparer preparer;
    private final List<TaskSpec> tasks;
    private final long maxBytes;
    private final ByteSources files;
    private final PageExtractor pages;
    /** Hashes of the documents whose pages come by (pages of one document are listed together). */
    private final DocumentHashes documents = new DocumentHashes(16);

    public PrepareProcessor(ImageFetcher fetcher, ImagePreparer preparer, List<TaskSpec> tasks, long maxBytes) {
        this(fetcher, preparer, tasks, maxBytes, null, null);
    }

    /** @param files, pages for items inside containers (null: such items fail) */
    public PrepareProcessor(ImageFetcher fetcher, ImagePreparer preparer, List<TaskSpec> tasks, long maxBytes,
                            ByteSources files, PageExtractor pages) {
        this.fetcher = fetcher;
        this.preparer = preparer;
        this.tasks = tasks;
        this.maxBytes = maxBytes;
        this.files = files;
        this.pages = pages;
    }

    @Override
    public PreparedItem process(WorkItem item) {
        List<String> prompts;
        try {
            prompts = ItemPrompts.render(item, tasks);
        } catch (IllegalArgumentException e) {
            return PreparedItem.rejected(item, e.getMessage());
        }
        String contentHash = null;
        String renderedWith = null;
        PreparedImage image;
        try {
            if (item.inContainer()) {
                if (pages == null) {
                    return PreparedItem.rejected(item, "pages and archive members are not enabled for this job");
                }
                Extracted extracted;
                try {
                    extracted = pages.extract(files.open(item.uri()), item.member(), item.page());
                    contentHash = documents.itemHash(item, extracted instanceof Extracted.ImageBytes b ? b.bytes() : null,
                            () -> files.open(item.uri()).openAt(0));
                } catch (ArchiveRejectedException e) {
                    return PreparedItem.rejected(item, e.getMessage());
                } catch (IOException | RuntimeException e) {
                    return PreparedItem.rejected(item, "cannot read " + item.uri() + ": " + e.getMessage());
                }
                image = switch (extracted) {
                    case Extracted.ImageBytes b -> preparer.prepare(b.bytes(), item.member());
                    case Extracted.Page p -> preparer.prepare(p.image());
                };
                if (extracted instanceof Extracted.Page p) {
                    renderedWith = p.renderedWith();
                }
            } else {
                byte[] bytes;
                try {
                    bytes = fetcher.fetch(item.uri(), maxBytes);
                    contentHash = ContentHash.of(bytes);
                } catch (IOException | RuntimeException e) {
                    return PreparedItem.rejected(item, "cannot read " + item.uri() + ": " + e.getMessage());
                }
                image = preparer.prepare(bytes, item.fileName());
            }
        } catch (ImageRejectedException e) {
            return PreparedItem.rejected(item, e.getMessage(), contentHash);
        } catch (RuntimeException | OutOfMemoryError e) {
            // A codec bug on a hostile file must not take the whole run down with it.
            return PreparedItem.rejected(item, "cannot decode: " + e, contentHash);
        }
        String dataUrl = "data:" + image.mimeType() + ";base64," + Base64.getEncoder().encodeToString(image.bytes());
        return new PreparedItem(item, dataUrl, image.originalWidth(), image.originalHeight(), prompts, null, contentHash,
                renderedWith);
    }

}
