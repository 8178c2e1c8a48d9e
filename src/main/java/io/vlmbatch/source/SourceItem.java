package io.vlmbatch.source;

import java.util.Map;

/**
 * One image found by a source.
 *
 * @param itemKey  stable id within the job: the manifest's id column, else the path relative to the
 *                 folder root, the manifest's path value, or the S3 key
 * @param uri      where to fetch it: {@code file:///abs/path} or {@code s3://bucket/key}
 * @param metadata the manifest's other columns (empty for folder and S3 sources)
 */
public record SourceItem(String itemKey, String uri, Map<String, String> metadata) {

    public SourceItem {
        metadata = metadata == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(metadata));
    }
}
