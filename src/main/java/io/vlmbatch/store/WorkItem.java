package io.vlmbatch.store;

import java.util.Map;

/** One image of one run, as frozen by the discover step. */
public record WorkItem(long id, long runId, String itemKey, String uri, Map<String, String> metadata) {
    public WorkItem {
        metadata = metadata == null ? Map.of() : Map.copyOf(metadata);
    }

    /** The last segment of the key or URI, for {{file_name}} in prompts. */
    public String fileName() {
        String s = uri.endsWith("/") ? uri.substring(0, uri.length() - 1) : uri;
        return s.substring(s.lastIndexOf('/') + 1);
    }
}
