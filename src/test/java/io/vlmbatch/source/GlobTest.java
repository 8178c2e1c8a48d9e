package io.vlmbatch.source;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;

import org.junit.jupiter.api.Test;

class GlobTest {

    @Test
    void patternWithoutSlashMatchesTheFileNameAtAnyDepth() {
        Glob jpg = Glob.compile("*.jpg");
        assertThat(jpg.matches("a.jpg")).isTrue();
        assertThat(jpg.matches("x/y/a.jpg")).isTrue();
        assertThat(jpg.matches("a.jpeg")).isFalse();
        assertThat(jpg.matches("a.JPG")).as("case-sensitive").isFalse();
    }

    @Test
    void patternWithSlashMatchesTheWholeRelativePath() {
        Glob g = Glob.compile("2024/*.png");
        assertThat(g.matches("2024/a.png")).isTrue();
        assertThat(g.matches("2024/sub/a.png")).as("* stays in one segment").isFalse();
        assertThat(g.matches("x/2024/a.png")).isFalse();
        assertThat(Glob.compile("/2024/*.png").matches("2024/a.png")).as("leading / anchors at the root").isTrue();
    }

    @Test
    void doubleStarCrossesSegmentsAndMayBeEmpty() {
        Glob g = Glob.compile("**/tmp/**");
        assertThat(g.matches("tmp/a.jpg")).isTrue();
        assertThat(g.matches("x/y/tmp/z/a.jpg")).isTrue();
        assertThat(g.matches("x/tmpfile.jpg")).isFalse();
        assertThat(Glob.compile("scans/**.tif").matches("scans/a/b/c.tif")).isTrue();
    }

    @Test
    void classesAlternativesAndSingleCharacters() {
        assertThat(Glob.compile("*.{jpg,png}").matches("d/e.png")).isTrue();
        assertThat(Glob.compile("*.{jpg,png}").matches("d/e.gif")).isFalse();
        assertThat(Glob.compile("img_[0-9][0-9].jpg").matches("img_07.jpg")).isTrue();
        assertThat(Glob.compile("img_[!0-9]*.jpg").matches("img_07.jpg")).isFalse();
        assertThat(Glob.compile("img_?.jpg").matches("img_a.jpg")).isTrue();
        assertThat(Glob.compile("a+b (1).jpg").matches("a+b (1).jpg")).as("regex characters are literal").isTrue();
    }

    @Test
    void badPatternsAreReported() {
        assertThatThrownBy(() -> Glob.compile("*.{jpg")).isInstanceOf(SourceException.class).hasMessageContaining("'{' without '}'");
        assertThatThrownBy(() -> Glob.compile("[abc")).isInstanceOf(SourceException.class).hasMessageContaining("']'");
        assertThatThrownBy(() -> Glob.compile(" ")).isInstanceOf(SourceException.class);
    }

    @Test
    void filterTakesImageExtensionsByDefaultAndAppliesExcludes() {
        PathFilter defaults = new PathFilter(List.of(), List.of("**/thumbs/**"));
        assertThat(defaults.accepts("a/b.JPG")).isTrue();
        assertThat(defaults.accepts("c.webp")).isTrue();
        assertThat(defaults.accepts("README.md")).isFalse();
        assertThat(defaults.accepts("noextension")).isFalse();
        assertThat(defaults.accepts("a/thumbs/b.jpg")).isFalse();

        PathFilter explicit = new PathFilter(List.of("*.dat", "keep/*"), List.of());
        assertThat(explicit.accepts("x/y.dat")).isTrue();
        assertThat(explicit.accepts("keep/notes.txt")).isTrue();
        assertThat(explicit.accepts("photo.jpg")).as("explicit include replaces the default").isFalse();
    }
}
