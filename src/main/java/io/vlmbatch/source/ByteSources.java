package io.vlmbatch.source;

import io.vlmbatch.archive.ByteSource;
import io.vlmbatch.archive.LocalFileSource;
import io.vlmbatch.archive.S3ObjectSource;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;
import java.util.function.Supplier;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * Opens the {@code file:} and {@code s3://} URIs that sources list as {@link ByteSource}s: local files
 * in place, S3 objects by ranged GETs (nothing spooled to disk). One S3 client, made on first use,
 * shared by all threads. Close it to close that client.
 */
public final class ByteSources implements AutoCloseable {

    private final LazyS3Client s3;

    public ByteSources(Supplier<S3Client> clients) {
        this.s3 = new LazyS3Client(clients);
    }

    public static ByteSources of(S3Settings settings) {
        S3Settings s = settings == null ? S3Settings.DEFAULT : settings;
        return new ByteSources(() -> S3Clients.create(s));
    }

    public ByteSource open(String uri) throws IOException {
        if (S3Uri.isS3(uri)) {
            S3Uri location = S3Uri.parse(uri);
            return new S3ObjectSource(client(), location.bucket(), location.key());
        }
        if (uri.startsWith("file:")) {
            try {
                return new LocalFileSource(Path.of(URI.create(uri)));
            } catch (IllegalArgumentException e) {
                throw new IOException("bad file URI: " + uri, e);
            }
        }
        throw new IOException("unsupported URI (expected file: or s3://): " + uri);
    }

    private S3Client client() {
        return s3.get();
    }

    @Override
    public void close() {
        s3.close();
    }
}
