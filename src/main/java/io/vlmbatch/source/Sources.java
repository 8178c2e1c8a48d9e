package io.vlmbatch.source;

import io.vlmbatch.archive.PageExtractor;
import io.vlmbatch.archive.RenderSpec;
import io.vlmbatch.image.ResizeSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Supplier;

import software.amazon.awssdk.services.s3.S3Client;

/** Entry point: opens the source a {@link SourceSpec} describes, and a fetcher for its URIs. */
public final class Sources {

    private Sources() {}

    /**
     * @param baseDir folder that relative folder and manifest paths resolve against (the job's)
     * @throws SourceException when the spec is invalid (not exactly one kind, bad glob, missing folder)
     */
    public static ImageSource open(SourceSpec spec, Path baseDir) {
        int kinds = (spec.folder() != null ? 1 : 0) + (spec.manifest() != null ? 1 : 0) + (spec.s3() != null ? 1 : 0);
        if (kinds != 1) {
            throw new SourceException("a source needs exactly one of folder, manifest or s3 (got " + kinds + ")");
        }
        Supplier<S3Client> clients = () -> S3Clients.create(spec.s3Settings());
        if (spec.manifest() != null) {
            if (!spec.include().isEmpty() || !spec.exclude().isEmpty()) {
                throw new SourceException("include/exclude apply to folder and s3 sources, not to a manifest");
            }
            return expanding(new ManifestSource(spec.manifest().strip(), baseDir, clients), spec);
        }
        PathFilter filter = new PathFilter(spec.include(), spec.exclude(), spec.expand().expand());
        if (spec.s3() != null) {
            return expanding(new S3Source(S3Uri.parse(spec.s3().strip()), filter, spec.recursive(), clients, null), spec);
        }
        Path root = baseDir.resolve(spec.folder().strip()).toAbsolutePath().normalize();
        if (!Files.isDirectory(root)) {
            throw new SourceException("source folder not found: " + root);
        }
        return expanding(new FolderSource(root, filter, spec.recursive()), spec);
    }

    /** PDFs, multi-page TIFFs and archives become pages and members, unless the job expands nothing. */
    private static ImageSource expanding(ImageSource files, SourceSpec spec) {
        if (spec.expand().expand().isEmpty()) {
            return files;
        }
        return new ExpandingSource(files, spec.expand(), ByteSources.of(spec.s3Settings()));
    }

    /** A fetcher for the URIs that sources produce; S3 is contacted only on the first s3:// fetch. */
    public static ImageFetcher fetcher(S3Settings s3) {
        S3Settings settings = s3 == null ? S3Settings.DEFAULT : s3;
        return new UriImageFetcher(() -> S3Clients.create(settings));
    }

    /**
     * How the items of this source's pages and members are read: the run's processor and `plan` take it
     * from here, so both render (and fingerprint) a page with the same settings.
     */
    public static PageExtractor pages(SourceSpec spec, ResizeSpec resize) {
        return new PageExtractor(spec.expand(), new RenderSpec(resize.maxSide(), spec.pdfDpi(), resize.maxPixels()));
    }
}
