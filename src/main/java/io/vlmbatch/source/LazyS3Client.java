package io.vlmbatch.source;

import java.util.function.Supplier;
import software.amazon.awssdk.services.s3.S3Client;

/** An S3 client made on first use, so jobs that never touch S3 never build one (nor read credentials). */
final class LazyS3Client implements AutoCloseable {
    private final Supplier<S3Client> clients;
    private volatile S3Client s3;

    LazyS3Client(Supplier<S3Client> clients) {
        this.clients = clients;
    }

    S3Client get() {
        S3Client c = s3;
        if (c == null) {
            synchronized (this) {
                if (s3 == null) {
                    s3 = clients.get();
                }
                c = s3;
            }
        }
        return c;
    }

    @Override
    public synchronized void close() {
        if (s3 != null) {
            s3.close();
            s3 = null;
        }
    }
}
