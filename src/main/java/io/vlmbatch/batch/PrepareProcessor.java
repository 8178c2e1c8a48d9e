package io.vlmbatch.batch;

import io.vlmbatch.image.ImagePreparer;
import io.vlmbatch.image.ImageRejectedException;
import io.vlmbatch.image.PreparedImage;
import io.vlmbatch.job.TaskSpec;
import io.vlmbatch.ledger.ContentHash;
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
 * Whatever is wrong with one image becomes that item's failure reason; the job goes on.
 */
public class PrepareProcessor implements ItemProcessor<WorkItem, PreparedItem> {
    private final ImageFetcher fetcher;
    private final ImagePreparer preparer;
    private final List<TaskSpec> tasks;
    private final long maxBytes;

    public PrepareProcessor(ImageFetcher fetcher, ImagePreparer preparer, List<TaskSpec> tasks, long maxBytes) {
        this.fetcher = fetcher;
        this.preparer = preparer;
        this.tasks = tasks;
        this.maxBytes = maxBytes;
    }

    @Override
    public PreparedItem process(WorkItem item) {
        List<String> prompts;
        try {
            prompts = prompts(item, tasks);
        } catch (IllegalArgumentException e) {
            return PreparedItem.rejected(item, e.getMessage());
        }
        byte[] bytes;
        try {
            bytes = fetcher.fetch(item.uri(), maxBytes);
        } catch (IOException | RuntimeException e) {
            return PreparedItem.rejected(item, "cannot read " + item.uri() + ": " + e.getMessage());
        }
        String contentHash = ContentHash.of(bytes);
        PreparedImage image;
        try {
            image = preparer.prepare(bytes, item.fileName());
        } catch (ImageRejectedException e) {
            return PreparedItem.rejected(item, e.getMessage(), contentHash);
        } catch (RuntimeException | OutOfMemoryError e) {
            // A codec bug on a hostile file must not take the whole run down with it.
            return PreparedItem.rejected(item, "cannot decode: " + e, contentHash);
        }
        String dataUrl = "data:" + image.mimeType() + ";base64," + Base64.getEncoder().encodeToString(image.bytes());
        return new PreparedItem(item, dataUrl, image.originalWidth(), image.originalHeight(), prompts, null, contentHash);
    }

    /**
     * Each task's final prompt for this item (what is sent, and what the ledger's fingerprint hashes).
     * @throws IllegalArgumentException naming the task whose template the item cannot fill
     */
    public static List<String> prompts(WorkItem item, List<TaskSpec> tasks) {
        List<String> prompts = new ArrayList<>();
        Map<String, String> vars = variables(item);
        for (TaskSpec task : tasks) {
            Map<String, String> v = new HashMap<>(vars);
            v.put("labels", String.join(", ", task.labels()));
            try {
                prompts.add(task.template().render(v));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("task " + task.name() + ": " + e.getMessage(), e);
            }
        }
        return prompts;
    }

    static Map<String, String> variables(WorkItem item) {
        Map<String, String> vars = new HashMap<>(item.metadata());
        vars.put("file_name", item.fileName());
        vars.put("item_key", item.itemKey());
        vars.put("uri", item.uri());
        return vars;
    }
}
