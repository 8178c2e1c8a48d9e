package io.vlmbatch.source;

import java.util.Map;

/**
 * One image, page or archive member found by a source.
 *
 * @param itemKey  stable id within the job: the manifest's id column, else the path relative to the
 *                 folder root, the manifest's path value, or the S3 key; for a page or member followed
 *                 by {@code !/member} and {@code #pN} (e.g. {@code scans/box1.zip!/letters/1903.pdf#p2})
 * @param uri      the file as listed ({@code source_uri}): {@code file:///abs/path} or {@code s3://bucket/key}
 * @param metadata the manifest's other columns (empty for folder and S3 sources)
 * @param member   path inside the container (nested levels joined by {@code !/}); empty when none
 * @param page     1-based page or frame; null for a single image
 * @param failure  why this document or member was refused while listing (encrypted PDF, bomb...); null if fine
 */
public record SourceItem(String itemKey, String uri, Map<String, String> metadata, String member, Integer page,
                         String failure) {

    public SourceItem {
        metadata = metadata == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(metadata));
        member = member == null ? "" : member;
    }

    /** A plain file: no member, no page. */
    public SourceItem(String itemKey, String uri, Map<String, String> metadata) {
        this(itemKey, uri, metadata, "", null, null);
    }
}
