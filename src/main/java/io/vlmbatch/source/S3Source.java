package io.vlmbatch.source;

import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Supplier;

import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Response;
import software.amazon.awssdk.services.s3.model.NoSuchBucketException;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * Objects under an {@code s3://bucket/prefix}, in the store's listing order (ascending UTF-8 key
 * order on S3 and the common compatible stores), page by page. Globs match the key relative to the
 * prefix's folder, e.g. for prefix {@code uploads/2024-} the key {@code uploads/2024-01/a.jpg} is
 * matched as {@code 2024-01/a.jpg}. Keys ending in '/' (folder markers) are skipped. Not recursive
 * means only keys with no further '/' after the prefix.
 */
final class S3Source implements ImageSource {

    private final S3Uri location;
    private final PathFilter filter;
    private final boolean recursive;
    private final Supplier<S3Client> clients;
    private final Integer pageSize; // null: the store's default (1000 on S3)

    S3Source(S3Uri location, PathFilter filter, boolean recursive, Supplier<S3Client> clients, Integer pageSize) {
        this.location = location;
        this.filter = filter;
        this.recursive = recursive;
        this.clients = clients;
        this.pageSize = pageSize;
    }

    @Override
    public void discover(Consumer<SourceItem> sink) {
        String folder = location.keyFolder();
        ListObjectsV2Request.Builder request = ListObjectsV2Request.builder()
                .bucket(location.bucket())
                .prefix(location.key())
                .maxKeys(pageSize);
        if (!recursive) {
            request.delimiter("/");
        }
        try (S3Client s3 = clients.get()) {
            for (ListObjectsV2Response page : s3.listObjectsV2Paginator(request.build())) {
                for (S3Object object : page.contents()) {
                    String key = object.key();
                    if (key.endsWith("/")) {
                        continue;
                    }
                    if (filter.accepts(key.substring(folder.length()))) {
                        sink.accept(new SourceItem(key, new S3Uri(location.bucket(), key).toString(), Map.of()));
                    }
                }
            }
        } catch (NoSuchBucketException e) {
            throw new SourceException("S3 bucket not found: " + location.bucket(), e);
        } catch (SdkException e) {
            throw new SourceException("cannot list " + location + ": " + e.getMessage(), e);
        }
    }
}
