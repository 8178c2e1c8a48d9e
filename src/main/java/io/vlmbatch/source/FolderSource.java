package io.vlmbatch.source;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Image files under a local folder, in ascending order of their relative path.
 *
 * <p>Siblings are sorted as "name" for files and "name/" for folders, which makes a depth-first walk
 * emit keys in plain string order without holding the whole listing in memory. Symbolic links are
 * followed only when their target lies inside the root (a link out of the root is skipped with a
 * warning), and a link back to a folder being walked is skipped, so loops end.
 */
final class FolderSource implements ImageSource {

    private static final Logger log = LoggerFactory.getLogger(FolderSource.class);

    private final Path root;
    private final PathFilter filter;
    private final boolean recursive;

    FolderSource(Path root, PathFilter filter, boolean recursive) {
        this.root = root;
        this.filter = filter;
        this.recursive = recursive;
    }

    @Override
    public void discover(Consumer<SourceItem> sink) throws IOException {
        if (!Files.isDirectory(root)) {
            throw new SourceException("source folder not found: " + root);
        }
        Path realRoot = root.toRealPath();
        Set<Path> walking = new HashSet<>();
        walking.add(realRoot);
        walk(realRoot, realRoot, "", walking, sink);
    }

    private void walk(Path realRoot, Path dir, String prefix, Set<Path> walking, Consumer<SourceItem> sink)
            throws IOException {
        for (Entry entry : sortedEntries(dir)) {
            String key = prefix + entry.name;
            Path path = dir.resolve(entry.name);
            Path real = path;
            if (Files.isSymbolicLink(path)) {
                try {
                    real = path.toRealPath();
                } catch (IOException e) {
                    log.warn("skipping {}: broken symbolic link", key);
                    continue;
                }
                if (!real.startsWith(realRoot)) {
                    log.warn("skipping {}: symbolic link leads out of the source folder", key);
                    continue;
                }
            }
            if (entry.directory) {
                if (!recursive) {
                    continue;
                }
                real = real.toRealPath(); // a folder reached through a linked parent: compare real paths
                if (!walking.add(real)) {
                    log.warn("skipping {}: symbolic link loops back to a folder being walked", key);
                    continue;
                }
                walk(realRoot, path, key + "/", walking, sink);
                walking.remove(real);
            } else if (entry.regularFile && filter.accepts(key)) {
                sink.accept(new SourceItem(key, real.toUri().toString(), Map.of()));
            }
        }
    }

    private record Entry(String name, boolean directory, boolean regularFile, String sortKey) {}

    private static List<Entry> sortedEntries(Path dir) throws IOException {
        List<Entry> entries = new ArrayList<>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir)) {
            for (Path p : stream) {
                String name = p.getFileName().toString();
                // follows links: a link to a folder sorts and walks like a folder
                boolean directory = Files.isDirectory(p);
                boolean regular = !directory && Files.isRegularFile(p);
                if (!directory && !regular && Files.isSymbolicLink(p) && !Files.exists(p)) {
                    regular = true; // broken link: let walk() report it
                }
                entries.add(new Entry(name, directory, regular, directory ? name + "/" : name));
            }
        }
        entries.sort((a, b) -> a.sortKey.compareTo(b.sortKey));
        return entries;
    }
}
