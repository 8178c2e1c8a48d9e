package io.vlmbatch.source;

import io.vlmbatch.archive.ExpandSpec;
import java.util.List;

/**
 * Where a job's images come from: exactly one of {@code folder}, {@code manifest} or {@code s3}.
 *
 * @param folder     a local folder (relative paths resolve against the job's base directory)
 * @param manifest   a CSV or JSONL manifest: a local path or an {@code s3://bucket/key} URI
 * @param s3         an {@code s3://bucket/prefix} to list
 * @param include    globs a file must match (folder and s3 only); empty means common image extensions
 * @param exclude    globs that drop a file (folder and s3 only)
 * @param recursive  descend into sub-folders / deeper key levels
 * @param s3Settings endpoint, region and addressing style for S3 and S3-compatible stores (may be null)
 * @param expand     which containers become pages/members ({@code source.expand}, all by default) and the
 *                   limits on them ({@code source.max_pages}, bomb guards)
 * @param pdfDpi     PDF pages render at this resolution ({@code pdf.dpi}); 0: long side = resize.max_side
 */
public record SourceSpec(String folder, String manifest, String s3, List<String> include, List<String> exclude,
                         boolean recursive, S3Settings s3Settings, ExpandSpec expand, int pdfDpi) {

    public SourceSpec {
        include = include == null ? List.of() : List.copyOf(include);
        exclude = exclude == null ? List.of() : List.copyOf(exclude);
        s3Settings = s3Settings == null ? S3Settings.DEFAULT : s3Settings;
        expand = expand == null ? ExpandSpec.defaults() : expand;
    }

    public SourceSpec(String folder, String manifest, String s3, List<String> include, List<String> exclude,
                      boolean recursive, S3Settings s3Settings) {
        this(folder, manifest, s3, include, exclude, recursive, s3Settings, ExpandSpec.defaults(), 0);
    }

    /** The same source at other locations (a run's rendered {{ ds }} paths). */
    public SourceSpec withLocations(String folder, String manifest, String s3) {
        return new SourceSpec(folder, manifest, s3, include, exclude, recursive, s3Settings, expand, pdfDpi);
    }

    public SourceSpec withExpand(ExpandSpec value) {
        return new SourceSpec(folder, manifest, s3, include, exclude, recursive, s3Settings, value, pdfDpi);
    }

    public static SourceSpec folder(String folder) {
        return new SourceSpec(folder, null, null, List.of(), List.of(), true, null);
    }

    public static SourceSpec manifest(String manifest, S3Settings s3Settings) {
        return new SourceSpec(null, manifest, null, List.of(), List.of(), true, s3Settings);
    }

    public static SourceSpec s3(String s3Uri, S3Settings s3Settings) {
        return new SourceSpec(null, null, s3Uri, List.of(), List.of(), true, s3Settings);
    }

    public SourceSpec withInclude(List<String> globs) {
        return new SourceSpec(folder, manifest, s3, globs, exclude, recursive, s3Settings, expand, pdfDpi);
    }

    public SourceSpec withExclude(List<String> globs) {
        return new SourceSpec(folder, manifest, s3, include, globs, recursive, s3Settings, expand, pdfDpi);
    }

    public SourceSpec withRecursive(boolean value) {
        return new SourceSpec(folder, manifest, s3, include, exclude, value, s3Settings, expand, pdfDpi);
    }
}
