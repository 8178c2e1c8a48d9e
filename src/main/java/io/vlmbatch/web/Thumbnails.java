package io.vlmbatch.web;

import io.vlmbatch.image.ImagePreparer;
import io.vlmbatch.image.ImageRejectedException;
import io.vlmbatch.image.ResizeSpec;
import io.vlmbatch.schedule.JobCatalog;
import io.vlmbatch.source.ImageFetcher;
import io.vlmbatch.source.S3Settings;
import io.vlmbatch.source.Sources;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Small JPEGs of a run's images for the gallery, made from the source (folder or S3) with the pipeline's
 * own decoder, and kept in a small in-memory LRU. The image is addressed by run and item id, so only
 * files a run discovered can be read.
 */
public final class Thumbnails implements AutoCloseable {
    static final int SIDE = 320;
    private static final long MAX_SOURCE_BYTES = 256L * 1024 * 1024;
    private static final int CACHED = 512;

    private final JobCatalog catalog;
    private final ImagePreparer preparer = new ImagePreparer(new ResizeSpec(SIDE, ResizeSpec.DEFAULT_MAX_PIXELS, "jpeg", 0.8f));
    private final Map<String, ImageFetcher> fetchers = new ConcurrentHashMap<>();
    private final Map<String, byte[]> cache = new LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, byte[]> e) {
            return size() > CACHED;
        }
    };

    public Thumbnails(JobCatalog catalog) {
        this.catalog = catalog;
    }

    public byte[] thumbnail(String job, long runId, long itemId, String uri) throws IOException, ImageRejectedException {
        String key = runId + "/" + itemId;
        synchronized (cache) {
            byte[] hit = cache.get(key);
            if (hit != null) return hit;
        }
        ImageFetcher fetcher = fetchers.computeIfAbsent(job, j -> Sources.fetcher(catalog.get(j)
                .filter(JobCatalog.Entry::ok).map(e -> e.definition().source().s3Settings())
                .orElse(new S3Settings(null, null, false))));
        byte[] jpeg = preparer.prepare(fetcher.fetch(uri, MAX_SOURCE_BYTES), uri).bytes();
        synchronized (cache) {
            cache.put(key, jpeg);
        }
        return jpeg;
    }

    @Override
    public void close() throws Exception {
        for (ImageFetcher f : fetchers.values()) f.close();
    }
}
