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
}
