package io.vlmbatch.batch;

import io.vlmbatch.store.WorkItem;
import java.util.List;

/**
 * A work item ready for the inference writer: the image as a data URL, one rendered prompt per task and
 * the content hash of its bytes (the ledger's key), or the reason it cannot be asked about (unreadable,
 * not an image, too large...). renderedWith: how a page was rendered beyond the job's resize (a PDF's
 * dpi), part of the ledger's fingerprint; null for images and default renders.
 */
public record PreparedItem(WorkItem item, String imageDataUrl, int width, int height, List<String> prompts,
                           String rejectReason, String contentHash, String renderedWith) {
    public PreparedItem(WorkItem item, String imageDataUrl, int width, int height, List<String> prompts,
                        String rejectReason, String contentHash) {
        this(item, imageDataUrl, width, height, prompts, rejectReason, contentHash, null);
    }

    public PreparedItem(WorkItem item, String imageDataUrl, int width, int height, List<String> prompts, String rejectReason) {
        this(item, imageDataUrl, width, height, prompts, rejectReason, null);
    }

    public static PreparedItem rejected(WorkItem item, String reason) {
        return rejected(item, reason, null);
    }

    /** contentHash: when the bytes were read before the item was found wrong (null otherwise). */
    public static PreparedItem rejected(WorkItem item, String reason, String contentHash) {
        return new PreparedItem(item, null, 0, 0, List.of(), reason, contentHash);
    }

    public boolean rejected() { return rejectReason != null; }
}
