package io.vlmbatch.ledger;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;

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
