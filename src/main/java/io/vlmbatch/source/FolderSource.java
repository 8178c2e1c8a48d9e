package io.vlmbatch.source;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
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
 *
 * <p>Entries are walked by the paths the directory listing gives (which keep the name's bytes), never by
 * names turned into text and back. A name that is not valid UTF-8 (written under another encoding) gets
 * a key with each stray byte as \xHH, so two such names stay two items instead of collapsing into one
 * U+FFFD key; should a key still equal a sibling's, it gets a ~N suffix (with a warning) rather than
 * being dropped as a duplicate. An entry that is neither a folder nor a regular file (a FIFO, a device, a
 * socket) is listed like a file, so that its item fails with the reason when read, not silently skipped.
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
            Path path = entry.path;
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
            } else if (filter.accepts(key)) {
                sink.accept(new SourceItem(key, real.toUri().toString(), Map.of()));
            }
        }
    }

    private record Entry(Path path, String name, boolean directory, String sortKey) {}

    private static List<Entry> sortedEntries(Path dir) throws IOException {
        List<Path> paths = new ArrayList<>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir)) {
            stream.forEach(paths::add);
        }
        // UTF-8 names keep their keys; a name given \xHH escapes yields to them if the two read alike
        Map<Path, String> names = new java.util.HashMap<>();
        Set<String> taken = new HashSet<>();
        List<Path> escaped = new ArrayList<>();
        for (Path p : paths) {
            String name = keyName(p);
            if (name.equals(p.getFileName().toString())) {
                names.put(p, name);
                taken.add(name);
            } else {
                escaped.add(p);
            }
        }
        for (Path p : escaped) {
            String name = keyName(p), unique = name;
            int dot = name.lastIndexOf('.') > 0 ? name.lastIndexOf('.') : name.length();
            for (int n = 2; !taken.add(unique); n++) unique = name.substring(0, dot) + "~" + n + name.substring(dot);
            if (!unique.equals(name)) log.warn("{}: {} is another entry's name too; the one that is not UTF-8 is listed as {}", dir, name, unique);
            names.put(p, unique);
        }
        List<Entry> entries = new ArrayList<>();
        for (Path p : paths) {
            String name = names.get(p);
            // follows links: a link to a folder sorts and walks like a folder
            boolean directory = Files.isDirectory(p);
            entries.add(new Entry(p, name, directory, directory ? name + "/" : name));
        }
        entries.sort((a, b) -> a.sortKey.compareTo(b.sortKey));
        return entries;
    }

    /** The entry's name as text: as it is when it is UTF-8, with each byte that is not as \xHH otherwise. */
    static String keyName(Path p) {
        String name = p.getFileName().toString();
        // the JDK decodes names lossily, undecodable bytes becoming U+FFFD (or '?' under an ASCII locale)
        if (name.chars().allMatch(c -> c < 0x80 && c != '?')) return name;
        String raw = p.toUri().getRawPath(); // the name's bytes, percent-encoded
        if (raw.endsWith("/")) raw = raw.substring(0, raw.length() - 1);
        byte[] bytes = percentDecoded(raw.substring(raw.lastIndexOf('/') + 1));
        CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length * 4 + 4);
        StringBuilder text = new StringBuilder();
        while (true) {
            CoderResult r = utf8.decode(in, out, true);
            text.append(out.flip());
            out.clear();
            if (r.isUnderflow()) break;
            if (r.isError()) {
                for (int i = 0; i < r.length(); i++) text.append(String.format("\\x%02X", in.get() & 0xff));
            }
        }
        utf8.flush(out);
        return text.append(out.flip()).toString();
    }

    private static byte[] percentDecoded(String s) {
        java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '%' && i + 2 < s.length()) {
                b.write(Integer.parseInt(s.substring(i + 1, i + 3), 16));
                i += 2;
            } else {
                b.write(c); // URI path characters other than escapes are ASCII
            }
        }
        return b.toByteArray();
    }
}
