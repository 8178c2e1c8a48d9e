package io.vlmbatch.store;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * One image, page or archive member of one run, as frozen by the discover step.
 *
 * @param uri    the file as listed (source_uri)
 * @param member path inside the container, nested levels joined by {@code !/}; empty when none
 * @param page   1-based page or frame; null for a single image
 */
public record WorkItem(long id, long runId, String itemKey, String uri, Map<String, String> metadata, String member,
                       Integer page) {
    public WorkItem {
        metadata = metadata == null ? Map.of() : Map.copyOf(metadata);
        member = member == null ? "" : member;
    }

    public WorkItem(long id, long runId, String itemKey, String uri, Map<String, String> metadata) {
        this(id, runId, itemKey, uri, metadata, "", null);
    }

    /** A page of a document or a member of an archive, rather than a whole image file. */
    public boolean inContainer() {
        return !member.isEmpty() || page != null;
    }

    /**
     * The name of the file as it is on disk or in the bucket, for {{file_name}} in prompts: the last
     * segment of the URI, percent-decoded for file: URIs (s3:// URIs hold the key verbatim).
     */
    public String fileName() {
        String s = uri.endsWith("/") ? uri.substring(0, uri.length() - 1) : uri;
        String last = s.substring(s.lastIndexOf('/') + 1);
        return s.regionMatches(true, 0, "file:", 0, 5) ? percentDecoded(last) : last;
    }

    /** %XX sequences as UTF-8 bytes ('+' stays '+', unlike form decoding); a malformed escape stays as written. */
    static String percentDecoded(String segment) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (int i = 0; i < segment.length(); ) {
            char c = segment.charAt(i);
            int hi = c == '%' && i + 2 < segment.length() ? Character.digit(segment.charAt(i + 1), 16) : -1;
            int lo = hi < 0 ? -1 : Character.digit(segment.charAt(i + 2), 16);
            if (lo >= 0) {
                bytes.write(hi * 16 + lo);
                i += 3;
            } else {
                int cp = segment.codePointAt(i);
                bytes.writeBytes(new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8));
                i += Character.charCount(cp);
            }
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }
}
