package io.vlmbatch.web;

import io.vlmbatch.archive.ArchiveRejectedException;
import io.vlmbatch.archive.ExpandSpec;
import io.vlmbatch.archive.Extracted;
import io.vlmbatch.archive.PageExtractor;
import io.vlmbatch.archive.RenderSpec;
import io.vlmbatch.image.ImagePreparer;
import io.vlmbatch.image.ImageRejectedException;
import io.vlmbatch.image.ResizeSpec;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.schedule.JobCatalog;
import io.vlmbatch.source.ByteSources;
import io.vlmbatch.source.ImageFetcher;
import io.vlmbatch.source.S3Settings;
import io.vlmbatch.source.Sources;
import io.vlmbatch.store.WorkItem;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Small JPEGs of a run's images for the gallery, made from the source (folder or S3) with the pipeline's
 * own decoder, and kept in a small in-memory LRU. The image is addressed by run and item id, so only
 * files a run discovered can be read. A page of a PDF or TIFF, or a member of an archive, is rendered
 * or read from its lineage as the processor does (PDF pages straight at thumbnail size), never from
 * the container file's bytes.
 */
public final class Thumbnails implements AutoCloseable {
    static final int SIDE = 320;
    private static final long MAX_SOURCE_BYTES = 256L * 1024 * 1024;
    private static final int CACHED = 512;
    private static final RenderSpec PAGES = new RenderSpec(SIDE, 0, ResizeSpec.DEFAULT_MAX_PIXELS);

    private final JobCatalog catalog;
    private final ImagePreparer preparer = new ImagePreparer(new ResizeSpec(SIDE, ResizeSpec.DEFAULT_MAX_PIXELS, "jpeg", 0.8f));
    private final Map<String, ImageFetcher> fetchers = new ConcurrentHashMap<>();
    private final Map<String, ByteSources> files = new ConcurrentHashMap<>();
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
        return thumbnail(job, new WorkItem(itemId, runId, "", uri, Map.of()));
    }

    /** @param item the item as discovery stored it (its id, run and lineage) */
    public byte[] thumbnail(String job, WorkItem item) throws IOException, ImageRejectedException {
        String key = item.runId() + "/" + item.id();
        synchronized (cache) {
            byte[] hit = cache.get(key);
            if (hit != null) return hit;
        }
        byte[] jpeg = item.inContainer() ? fromLineage(job, item)
                : preparer.prepare(fetcher(job).fetch(item.uri(), MAX_SOURCE_BYTES), item.uri()).bytes();
        synchronized (cache) {
            cache.put(key, jpeg);
        }
        return jpeg;
    }

    private byte[] fromLineage(String job, WorkItem item) throws IOException, ImageRejectedException {
        ExpandSpec expand = definition(job).map(d -> d.source().expand()).orElse(ExpandSpec.defaults());
        Extracted extracted;
        try {
            extracted = new PageExtractor(expand, PAGES).extract(files(job).open(item.uri()), item.member(), item.page());
        } catch (ArchiveRejectedException e) {
            throw new ImageRejectedException(e.getMessage());
        }
        return switch (extracted) {
            case Extracted.ImageBytes b -> preparer.prepare(b.bytes(), item.member()).bytes();
            case Extracted.Page p -> preparer.prepare(p.image()).bytes();
        };
    }

    private Optional<JobDefinition> definition(String job) {
        return catalog.get(job).filter(JobCatalog.Entry::ok).map(JobCatalog.Entry::definition);
    }

    private S3Settings s3(String job) {
        return definition(job).map(d -> d.source().s3Settings()).orElse(new S3Settings(null, null, false));
    }

    private ImageFetcher fetcher(String job) {
        return fetchers.computeIfAbsent(job, j -> Sources.fetcher(s3(j)));
    }

    private ByteSources files(String job) {
        return files.computeIfAbsent(job, j -> ByteSources.of(s3(j)));
    }

    @Override
    public void close() throws Exception {
        for (ImageFetcher f : fetchers.values()) f.close();
        for (ByteSources f : files.values()) f.close();
    }
}
