package io.vlmbatch.batch;

import io.vlmbatch.store.WorkItem;
import java.util.List;

/**
 * A work item ready for the inference writer: the image as a data URL and one rendered prompt per task,
 * or the reason it cannot be asked about (unreadable, not an image, too large...).
 */
public record PreparedItem(WorkItem item, String imageDataUrl, int width, int height, List<String> prompts,
                           String rejectReason) {
    public static PreparedItem rejected(WorkItem item, String reason) {
        return new PreparedItem(item, null, 0, 0, List.of(), reason);
    }

    public boolean rejected() { return rejectReason != null; }
}
