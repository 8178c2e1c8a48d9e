package io.vlmbatch.source;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FolderSourceTest {

    @TempDir
    Path tmp;
    Path root;

    @BeforeEach
    void layout() throws IOException {
        root = tmp.resolve("images");
        for (String f : List.of("b.jpg", "a.png", "A.JPG", "notes.txt", "a-c.jpg", "a/z.webp", "a/b/deep.tif",
                "a/tmp/skip.jpg", "c d/space name.gif", "thumbs/t.jpg")) {
            Path p = root.resolve(f);
            Files.createDirectories(p.getParent());
            Files.writeString(p, f);
        }
    }

    @Test
    void listsImagesRecursivelyInSortedRelativePathOrder() throws IOException {
        List<SourceItem> items = Discovered.items(SourceSpec.folder("images"), tmp);
        assertThat(Discovered.keys(items)).containsExactly("A.JPG", "a-c.jpg", "a.png", "a/b/deep.tif", "a/tmp/skip.jpg",
                "a/z.webp", "b.jpg", "c d/space name.gif", "thumbs/t.jpg");
        assertThat(Discovered.keys(items)).isSorted();
        SourceItem spaced = items.get(7);
        assertThat(spaced.uri()).startsWith("file:/").contains("space%20name.gif");
        assertThat(Files.readString(Path.of(URI.create(spaced.uri())))).isEqualTo("c d/space name.gif");
        assertThat(spaced.metadata()).isEmpty();
    }

    @Test
    void discoveryIsRepeatable() throws IOException {
        assertThat(Discovered.items(SourceSpec.folder("images"), tmp)).isEqualTo(Discovered.items(SourceSpec.folder("images"), tmp));
    }

    @Test
    void includeAndExcludeGlobs() throws IOException {
        SourceSpec spec = SourceSpec.folder("images").withInclude(List.of("*.jpg", "*.tif")).withExclude(List.of("**/tmp/**", "thumbs/**"));
        assertThat(Discovered.keys(Discovered.items(spec, tmp))).containsExactly("a-c.jpg", "a/b/deep.tif", "b.jpg");
        assertThat(Discovered.keys(Discovered.items(SourceSpec.folder("images").withInclude(List.of("*.txt")), tmp))).containsExactly("notes.txt");
    }

    @Test
    void notRecursiveStaysInTheRoot() throws IOException {
        assertThat(Discovered.keys(Discovered.items(SourceSpec.folder("images").withRecursive(false), tmp)))
                .containsExactly("A.JPG", "a-c.jpg", "a.png", "b.jpg");
    }

    @Test
    void absoluteFolderIgnoresTheBaseDirectory() throws IOException {
        List<SourceItem> items = new ArrayList<>();
        Sources.open(SourceSpec.folder(root.toString()).withRecursive(false), Path.of("/nonexistent")).discover(items::add);
        assertThat(items).hasSize(4);
    }

    @Test
    void symbolicLinksInsideTheRootAreFollowedAndLinksOutAreNot() throws IOException {
        Path outside = tmp.resolve("outside");
        Files.createDirectories(outside);
        Files.writeString(outside.resolve("secret.jpg"), "secret");
        Files.createSymbolicLink(root.resolve("link-out.jpg"), outside.resolve("secret.jpg"));
        Files.createSymbolicLink(root.resolve("dir-out"), outside);
        Files.createSymbolicLink(root.resolve("dir-out-relative"), Path.of("../outside"));
        Files.createSymbolicLink(root.resolve("link-in.jpg"), root.resolve("b.jpg"));
        Files.createSymbolicLink(root.resolve("a/b/loop"), root.resolve("a"));
        Files.createSymbolicLink(root.resolve("broken.jpg"), tmp.resolve("missing.jpg"));

        List<SourceItem> items = Discovered.items(SourceSpec.folder("images"), tmp);
        List<String> keys = Discovered.keys(items);
        assertThat(keys).contains("link-in.jpg", "a/z.webp").doesNotContain("link-out.jpg", "broken.jpg");
        assertThat(keys).noneMatch(k -> k.startsWith("dir-out")).noneMatch(k -> k.contains("secret"));
        assertThat(keys).noneMatch(k -> k.startsWith("a/b/loop"));
        assertThat(items).allSatisfy(i -> assertThat(Path.of(URI.create(i.uri()))).startsWith(root.toRealPath()));
        assertThat(keys).isSorted();
    }

    @Test
    void rootThatIsItselfALinkIsWalked() throws IOException {
        Files.createSymbolicLink(tmp.resolve("alias"), root);
        assertThat(Discovered.keys(Discovered.items(SourceSpec.folder("alias").withRecursive(false), tmp))).hasSize(4);
    }

    @Test
    void missingFolderIsAClearError() {
        assertThatThrownBy(() -> Sources.open(SourceSpec.folder("nope"), tmp))
                .isInstanceOf(SourceException.class)
                .hasMessage("source folder not found: " + tmp.resolve("nope"));
    }

    @Test
    void specMustNameExactlyOneKind() {
        SourceSpec none = new SourceSpec(null, null, null, null, null, true, null);
        SourceSpec two = new SourceSpec("images", "m.csv", null, null, null, true, null);
        assertThatThrownBy(() -> Sources.open(none, tmp)).isInstanceOf(SourceException.class)
                .hasMessageContaining("exactly one of folder, manifest or s3");
        assertThatThrownBy(() -> Sources.open(two, tmp)).isInstanceOf(SourceException.class)
                .hasMessageContaining("(got 2)");
    }

    /** A file whose name is the given bytes (a URI's %XX escapes become the name's bytes as they are). */
    Path rawNamed(String percentEncodedName, String content) throws IOException {
        Path p = Path.of(URI.create(root.toUri() + percentEncodedName));
        Files.writeString(p, content);
        return p;
    }

    @Test
    void namesThatAreNotUtf8StayDistinctAndReadable() throws IOException {
        // Latin-1 "é" and "è" as single bytes, a lone continuation byte, and a valid UTF-8 name for comparison
        rawNamed("caf%E9.jpg", "e-acute");
        rawNamed("caf%E8.jpg", "e-grave");
        rawNamed("%80.jpg", "continuation");
        rawNamed("caf%C3%A9.jpg", "utf-8");
        // a UTF-8 name that reads like the escape of another: the UTF-8 one keeps it
        Files.writeString(root.resolve("caf\\xE8.jpg"), "literal");
        List<SourceItem> items = Discovered.items(SourceSpec.folder("images").withRecursive(false), tmp);
        List<String> keys = Discovered.keys(items);
        assertThat(keys).contains("caf\\xE9.jpg", "caf\\xE8~2.jpg", "caf\\xE8.jpg", "\\x80.jpg", "café.jpg");
        assertThat(keys).doesNotHaveDuplicates().isSorted().noneMatch(k -> k.contains("\uFFFD"));
        // each key's URI reads its own file, not a look-alike
        java.util.Map<String, String> content = new java.util.HashMap<>();
        for (SourceItem i : items) content.put(i.itemKey(), Files.readString(Path.of(URI.create(i.uri()))));
        assertThat(content).containsEntry("caf\\xE9.jpg", "e-acute").containsEntry("caf\\xE8~2.jpg", "e-grave")
                .containsEntry("caf\\xE8.jpg", "literal").containsEntry("\\x80.jpg", "continuation").containsEntry("café.jpg", "utf-8");
        // a folder with such a name is walked too
        Path dir = Path.of(URI.create(root.toUri() + "d%FF/"));
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("in.jpg"), "inside");
        assertThat(Discovered.keys(Discovered.items(SourceSpec.folder("images"), tmp))).contains("d\\xFF/in.jpg");
    }

    @Test
    void aFifoIsListedAndFailsWhenReadInsteadOfBlocking() throws Exception {
        Path fifo = root.resolve("pipe.jpg");
        Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
        assertThat(mkfifo.waitFor()).isZero();
        List<SourceItem> items = Discovered.items(SourceSpec.folder("images").withInclude(List.of("pipe.jpg")), tmp);
        assertThat(Discovered.keys(items)).as("not silently skipped").containsExactly("pipe.jpg");
        try (ImageFetcher fetcher = Sources.fetcher(null)) {
            org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(10), () ->
                    assertThatThrownBy(() -> fetcher.fetch(items.getFirst().uri(), 1 << 20))
                            .isInstanceOf(IOException.class).hasMessageContaining("not a regular file"));
            Path dev = Path.of("/dev/zero"); // endless: must not be read either
            assertThatThrownBy(() -> fetcher.fetch(dev.toUri().toString(), 1 << 20)).hasMessageContaining("not a regular file");
        }
    }
}
