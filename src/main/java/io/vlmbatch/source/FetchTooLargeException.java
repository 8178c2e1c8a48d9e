package io.vlmbatch.source;

import java.io.IOException;

/** The object is bigger than the fetch limit; it was not read. Retrying will not help. */
public class FetchTooLargeException extends IOException {

    public FetchTooLargeException(String uri, long size, long maxBytes) {
        super("file too large: " + (size < 0 ? "more than " + maxBytes : size) + " bytes exceeds the "
                + maxBytes + "-byte limit (" + uri + ")");
    }
}
