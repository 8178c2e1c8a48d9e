package io.vlmbatch.source;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.function.Supplier;

import software.amazon.awssdk.core.ResponseInputStream;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.GetObjectRequest;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.NoSuchBucketException;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;

/**
 * Fetches {@code file:} and {@code s3://} URIs. The S3 client is made on the first S3 fetch, so jobs
 * over local files never touch AWS configuration, and is shared by all threads (it is thread-safe).
 */
final class UriImageFetcher implements ImageFetcher {

    private final LazyS3Client s3;

    UriImageFetcher(Supplier<S3Client> clients) {
        this.s3 = new LazyS3Client(clients);
    }

    @Override
    public byte[] fetch(String uri, long maxBytes) throws IOException {
        if (S3Uri.isS3(uri)) {
            return fetchS3(S3Uri.parse(uri), maxBytes);
        }
        if (uri.startsWith("file:")) {
            return fetchFile(uri, maxBytes);
        }
        throw new IOException("unsupported URI (expected file: or s3://): " + uri);
    }

    private static byte[] fetchFile(String uri, long maxBytes) throws IOException {
        Path path;
        try {
            path = Path.of(URI.create(uri));
        } catch (IllegalArgumentException e) {
            throw new IOException("bad file URI: " + uri, e);
        }
        // NoSuchFileException when missing. Opening a FIFO would wait for a writer, and a device may never
        // end: anything but a regular file (links followed) fails here, before it is opened.
        var attributes = Files.readAttributes(path, java.nio.file.attribute.BasicFileAttributes.class);
        if (!attributes.isRegularFile()) {
            throw new IOException("not a regular file (" + (attributes.isDirectory() ? "a folder" : "a FIFO, device or socket")
                    + "): " + path);
        }
        long size = attributes.size();
        if (size > maxBytes) {
            throw new FetchTooLargeException(uri, size, maxBytes);
        }
        try (InputStream in = Files.newInputStream(path)) {
            return readCapped(in, maxBytes, uri); // the file may have grown since size()
        }
    }

    private byte[] fetchS3(S3Uri location, long maxBytes) throws IOException {
        GetObjectRequest request = GetObjectRequest.builder().bucket(location.bucket()).key(location.key()).build();
        try (ResponseInputStream<GetObjectResponse> in = client().getObject(request)) {
            Long length = in.response().contentLength();
            if (length != null && length > maxBytes) {
                in.abort(); // don't drain a large body just to reuse the connection
                throw new FetchTooLargeException(location.toString(), length, maxBytes);
            }
            return readCapped(in, maxBytes, location.toString());
        } catch (NoSuchKeyException | NoSuchBucketException e) {
            throw new NoSuchFileException(location.toString(), null, "no such S3 object");
        } catch (SdkException e) {
            throw new IOException("cannot read " + location + ": " + e.getMessage(), e);
        }
    }

    private static byte[] readCapped(InputStream in, long maxBytes, String uri) throws IOException {
        int limit = (int) Math.min(maxBytes, Integer.MAX_VALUE - 16);
        byte[] bytes = in.readNBytes(limit);
        if (bytes.length == limit && in.read() >= 0) {
            throw new FetchTooLargeException(uri, -1, maxBytes);
        }
        return bytes;
    }

    private S3Client client() {
        return s3.get();
    }

    @Override
    public void close() {
        s3.close();
    }
}
