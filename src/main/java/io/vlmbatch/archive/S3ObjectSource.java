package io.vlmbatch.archive;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.NoSuchFileException;

import software.amazon.awssdk.core.ResponseInputStream;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * An S3 object read with ranged GETs ({@code Range: bytes=N-}), never downloaded whole or spooled to
 * disk: random access goes through {@link BlockCachedChannel}, so a PDF page or a ZIP's directory costs
 * a few requests of at most a few MB. Every read is pinned to the ETag seen first, so an object replaced
 * while it is being read fails cleanly instead of mixing two versions. The client is the caller's.
 */
public final class S3ObjectSource implements ByteSource {

    private final S3Client s3;
    private final String bucket;
    private final String key;
    private HeadObjectResponse head;

    public S3ObjectSource(S3Client s3, String bucket, String key) {
        this.s3 = s3;
        this.bucket = bucket;
        this.key = key;
    }

    @Override
    public String name() {
        return "s3://" + bucket + "/" + key;
    }

    @Override
    public long size() throws IOException {
        return head().contentLength();
    }

    private HeadObjectResponse head() throws IOException {
        if (head == null) {
            try {
                head = s3.headObject(b -> b.bucket(bucket).key(key));
            } catch (NoSuchKeyException e) {
                throw new NoSuchFileException(name(), null, "no such S3 object");
            } catch (S3Exception e) {
                if (e.statusCode() == 404) {
                    throw new NoSuchFileException(name(), null, "no such S3 object");
                }
                throw new IOException("cannot read " + name() + ": " + e.getMessage(), e);
            } catch (SdkException e) {
                throw new IOException("cannot read " + name() + ": " + e.getMessage(), e);
            }
        }
        return head;
    }

    @Override
    public InputStream openAt(long offset) throws IOException {
        HeadObjectResponse h = head();
        if (offset >= h.contentLength()) {
            return InputStream.nullInputStream(); // a range past the end is a 416 on S3
        }
        try {
            ResponseInputStream<GetObjectResponse> response = s3.getObject(b -> b.bucket(bucket).key(key)
                    .range("bytes=" + offset + "-").ifMatch(h.eTag()));
            return new FilterInputStream(response) {
                @Override
                public void close() throws IOException {
                    response.abort(); // readers stop early; draining the rest of a large object would waste the transfer
                    response.close();
                }
            };
        } catch (S3Exception e) {
            if (e.statusCode() == 412) {
                throw new IOException(name() + " changed while it was being read", e);
            }
            throw new IOException("cannot read " + name() + ": " + e.getMessage(), e);
        } catch (SdkException e) {
            throw new IOException("cannot read " + name() + ": " + e.getMessage(), e);
        }
    }
}
