package io.vlmbatch.source;

import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Include/exclude globs over relative paths. With no include globs, files with a common image
 * extension (any case) are taken, so a folder's README or LICENSE does not become a failed item.
 */
public final class PathFilter {

    static final Set<String> IMAGE_EXTENSIONS =
            Set.of("jpg", "jpeg", "jpe", "png", "webp", "tif", "tiff", "bmp", "gif");

    private final List<Glob> include;
    private final List<Glob> exclude;

    public PathFilter(List<String> include, List<String> exclude) {
        this.include = include.stream().map(Glob::compile).toList();
        this.exclude = exclude.stream().map(Glob::compile).toList();
    }

    public boolean accepts(String relativePath) {
        boolean included = include.isEmpty()
                ? hasImageExtension(relativePath)
                : include.stream().anyMatch(g -> g.matches(relativePath));
        return included && exclude.stream().noneMatch(g -> g.matches(relativePath));
    }

    static boolean hasImageExtension(String path) {
        int dot = path.lastIndexOf('.');
        int slash = path.lastIndexOf('/');
        return dot > slash && IMAGE_EXTENSIONS.contains(path.substring(dot + 1).toLowerCase(Locale.ROOT));
    }
}
