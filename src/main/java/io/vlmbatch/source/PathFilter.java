package io.vlmbatch.source;

import io.vlmbatch.archive.Container;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Include/exclude globs over relative paths. With no include globs, files with a common image
 * extension (any case) are taken, plus the documents and archives the job expands (.pdf, .zip, .tar,
 * .tar.gz, .tgz), so a folder's README or LICENSE does not become a failed item.
 */
public final class PathFilter {

    static final Set<String> IMAGE_EXTENSIONS =
            Set.of("jpg", "jpeg", "jpe", "png", "webp", "tif", "tiff", "bmp", "gif");

    private final List<Glob> include;
    private final List<Glob> exclude;
    private final Set<Container> expanded;

    public PathFilter(List<String> include, List<String> exclude) {
        this(include, exclude, Set.of());
    }

    public PathFilter(List<String> include, List<String> exclude, Set<Container> expanded) {
        this.include = include.stream().map(Glob::compile).toList();
        this.exclude = exclude.stream().map(Glob::compile).toList();
        this.expanded = expanded;
    }

    public boolean accepts(String relativePath) {
        boolean included = include.isEmpty()
                ? hasImageExtension(relativePath) || isExpandedContainer(relativePath)
                : include.stream().anyMatch(g -> g.matches(relativePath));
        return included && exclude.stream().noneMatch(g -> g.matches(relativePath));
    }

    private boolean isExpandedContainer(String path) {
        String lower = path.substring(path.lastIndexOf('/') + 1).toLowerCase(Locale.ROOT);
        return (expanded.contains(Container.PDF) && lower.endsWith(".pdf"))
                || (expanded.contains(Container.ZIP) && lower.endsWith(".zip"))
                || (expanded.contains(Container.TAR) && (lower.endsWith(".tar") || lower.endsWith(".tar.gz") || lower.endsWith(".tgz")));
    }

    static boolean hasImageExtension(String path) {
        int dot = path.lastIndexOf('.');
        int slash = path.lastIndexOf('/');
        return dot > slash && IMAGE_EXTENSIONS.contains(path.substring(dot + 1).toLowerCase(Locale.ROOT));
    }
}
