package io.vlmbatch.ledger;

import io.vlmbatch.store.WorkItem;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * The content hashes of the last few documents whose pages were prepared. Pages of one document are
 * listed one after another, so a small cache reads each document once for all its pages.
 */
public final class DocumentHashes {
    /** Opens the document's bytes from the start. */
    public interface Opener {
        InputStream open() throws IOException;
    }

    private final Map<String, String> recent;

    public DocumentHashes(int size) {
        this.recent = new LinkedHashMap<>(size, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, String> eldest) {
                return size() > size;
            }
        };
    }

    /**
     * The content hash the ledger records for an item inside a container, for the run's processor and for
     * `plan` alike: a member image (no page) by its own bytes, a page by its listed file's hash, member and page.
     *
     * @param memberImage the member's bytes when the item has no page (ignored otherwise)
     * @param document    opens the listed file, read only when its hash is not cached
     */
    public String itemHash(WorkItem item, byte[] memberImage, Opener document) {
        if (item.page() == null) {
            return ContentHash.of(Objects.requireNonNull(memberImage, "a member image's bytes"));
        }
        return ContentHash.ofPart(hash(item.uri(), document), item.member(), item.page());
    }

    public String hash(String uri, Opener opener) {
        synchronized (recent) {
            String h = recent.get(uri);
            if (h != null) return h;
        }
        String h;
        try (InputStream in = opener.open()) {
            h = ContentHash.ofStream(in);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + uri + " for its content hash: " + e.getMessage(), e);
        }
        synchronized (recent) {
            recent.put(uri, h);
        }
        return h;
    }
}
