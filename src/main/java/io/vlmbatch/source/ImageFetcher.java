package io.vlmbatch.source;

import java.io.IOException;

/** Reads an image's bytes from a {@code file:} or {@code s3://} URI. Safe to share between threads. */
public interface ImageFetcher extends AutoCloseable {

    /**
     * @throws java.nio.file.NoSuchFileException when the file or object does not exist
     * @throws FetchTooLargeException            when it is larger than {@code maxBytes}
     * @throws IOException                       on any other read failure
     */
    byte[] fetch(String uri, long maxBytes) throws IOException;

    @Override
    void close();
}
