package io.vlmbatch.archive;

import static io.vlmbatch.testsupport.ArchiveFiles.members;
import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.ArchiveFiles;
import io.vlmbatch.testsupport.ImageFiles;
import java.awt.Color;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Discovery reads structure only: pages, frames, members, each with its lineage and a readable key. */
class ExpanderTest {

    @TempDir
    Path dir;

    @Test
    void aTextPdfBecomesOneItemPerPageWithItsLineage() throws Exception {
        ArchiveFiles.write(dir.resolve("letters/1903.pdf"), ArchiveFiles.textPdf(3, "letter"));
        Expansions e = Expansions.of(dir, "letters/1903.pdf");
        assertThat(e.keys()).containsExactly("letters/1903.pdf#p1", "letters/1903.pdf#p2", "letters/1903.pdf#p3");
        ExpandedItem p2 = e.item("letters/1903.pdf#p2");
        assertThat(p2.lineage()).isEqualTo(new Lineage(dir.resolve("letters/1903.pdf").toUri().toString(), "", 2));
        assertThat(p2.failed()).isFalse();
        assertThat(e.stats().pages()).isEqualTo(3);
        assertThat(e.stats().documents()).isEqualTo(1);
    }

    @Test
    void aScannedPdfAndAMultiPageTiffExpandToPagesAndASingleFrameTiffStaysOneImage() throws Exception {
        ArchiveFiles.write(dir.resolve("scan.pdf"), ArchiveFiles.scannedPdf(Color.RED, Color.GREEN));
        ArchiveFiles.write(dir.resolve("stack.tiff"), ArchiveFiles.multiPageTiff(300, 400, Color.RED, Color.GREEN, Color.BLUE));
        ArchiveFiles.write(dir.resolve("one.tif"), ArchiveFiles.multiPageTiff(300, 400, Color.RED));
        assertThat(Expansions.of(dir, "scan.pdf").keys()).containsExactly("scan.pdf#p1", "scan.pdf#p2");
        assertThat(Expansions.of(dir, "stack.tiff").keys()).containsExactly("stack.tiff#p1", "stack.tiff#p2", "stack.tiff#p3");
        Expansions one = Expansions.of(dir, "one.tif");
        assertThat(one.keys()).containsExactly("one.tif");
        assertThat(one.items().getFirst().lineage().page()).isNull();
    }

    @Test
    void aZipListsImagesAndThePagesOfAPdfInsideAndSkipsUnknownMembers() throws Exception {
        byte[] zip = ArchiveFiles.zip(members(
                "photos/", new byte[0],
                "photos/a.jpg", ImageFiles.jpeg(64, 48, 1),
                "photos/b.png", ArchiveFiles.multiPageTiff(10, 10, Color.RED), // misnamed: still listed as an image
                "letters/1903.pdf", ArchiveFiles.textPdf(2, "in a zip"),
                "readme.txt", "just text".getBytes(),
                "scan.dat", ImageFiles.jpeg(32, 32, 2))); // an image by content, whatever its name
        ArchiveFiles.write(dir.resolve("scans/box1.zip"), zip);
        Expansions e = Expansions.of(dir, "scans/box1.zip");
        assertThat(e.keys()).containsExactly(
                "scans/box1.zip!/photos/a.jpg",
                "scans/box1.zip!/photos/b.png",
                "scans/box1.zip!/letters/1903.pdf#p1",
                "scans/box1.zip!/letters/1903.pdf#p2",
                "scans/box1.zip!/scan.dat");
        assertThat(e.item("scans/box1.zip!/letters/1903.pdf#p2").lineage())
                .isEqualTo(new Lineage(dir.resolve("scans/box1.zip").toUri().toString(), "letters/1903.pdf", 2));
        assertThat(e.item("scans/box1.zip!/photos/a.jpg").lineage().page()).isNull();
        assertThat(e.stats().skippedUnknown()).isEqualTo(1);
        assertThat(e.failures()).isEmpty();
    }

    @Test
    void tarAndTarGzListTheirMembersLikeAZip() throws Exception {
        var content = members("a.jpg", ImageFiles.jpeg(40, 30, 3), "deep/" + "x".repeat(120) + ".pdf",
                ArchiveFiles.textPdf(2, "long name"), "stack.tif", ArchiveFiles.multiPageTiff(50, 60, Color.RED, Color.BLUE));
        ArchiveFiles.write(dir.resolve("b.tar"), ArchiveFiles.tar(content));
        ArchiveFiles.write(dir.resolve("b.tar.gz"), ArchiveFiles.tarGz(content));
        ArchiveFiles.write(dir.resolve("b.tgz"), ArchiveFiles.tarGz(content));
        String longName = "deep/" + "x".repeat(120) + ".pdf";
        for (String name : List.of("b.tar", "b.tar.gz", "b.tgz")) {
            assertThat(Expansions.of(dir, name).keys()).as(name).containsExactly(
                    name + "!/a.jpg", name + "!/" + longName + "#p1", name + "!/" + longName + "#p2",
                    name + "!/stack.tif#p1", name + "!/stack.tif#p2");
        }
    }

    @Test
    void aPdfInsideAZipInsideATarGzKeepsTheWholePathAndTheDepthIsBounded() throws Exception {
        byte[] inner = ArchiveFiles.zip(members("letters/1903.pdf", ArchiveFiles.textPdf(2, "nested")));
        ArchiveFiles.write(dir.resolve("archive.tar.gz"), ArchiveFiles.tarGz(members("box1.zip", inner)));
        Expansions e = Expansions.of(dir, "archive.tar.gz");
        assertThat(e.keys()).containsExactly("archive.tar.gz!/box1.zip!/letters/1903.pdf#p1",
                "archive.tar.gz!/box1.zip!/letters/1903.pdf#p2");
        assertThat(e.items().getFirst().lineage().member()).isEqualTo("box1.zip!/letters/1903.pdf");

        Expansions shallow = Expansions.of(ExpandSpec.defaults().withMaxDepth(2), dir, "archive.tar.gz");
        assertThat(shallow.keys()).containsExactly("archive.tar.gz!/box1.zip!/letters/1903.pdf");
        assertThat(shallow.items().getFirst().failure()).isEqualTo("containers nested more than 2 deep");
    }

    @Test
    void theExpandListNarrowsWhatIsOpened() throws Exception {
        ArchiveFiles.write(dir.resolve("doc.pdf"), ArchiveFiles.textPdf(2, "x"));
        ArchiveFiles.write(dir.resolve("box.zip"), ArchiveFiles.zip(members("a.jpg", ImageFiles.jpeg(20, 20, 1),
                "doc.pdf", ArchiveFiles.textPdf(2, "y"))));
        ExpandSpec none = ExpandSpec.defaults().withExpand(EnumSet.noneOf(Container.class));
        assertThat(Expansions.of(none, dir, "doc.pdf").keys()).containsExactly("doc.pdf");
        assertThat(Expansions.of(none, dir, "box.zip").keys()).containsExactly("box.zip");

        ExpandSpec zipOnly = ExpandSpec.defaults().withExpand(Container.parse(List.of("zip")));
        assertThat(Expansions.of(zipOnly, dir, "doc.pdf").keys()).containsExactly("doc.pdf");
        Expansions box = Expansions.of(zipOnly, dir, "box.zip");
        assertThat(box.keys()).containsExactly("box.zip!/a.jpg");
        assertThat(box.stats().skippedUnknown()).isEqualTo(1);
    }

    @Test
    void aFileNamedLikeAnImageIsNotOpened() throws Exception {
        // Not readable at all: had discovery opened it, this would throw.
        Path missing = dir.resolve("gone.jpg");
        var items = new java.util.ArrayList<ExpandedItem>();
        new Expander(ExpandSpec.defaults()).expand("gone.jpg", missing.toUri().toString(), new LocalFileSource(missing), items::add);
        assertThat(items).extracting(ExpandedItem::key).containsExactly("gone.jpg");
    }

    @Test
    void containerTypeNamesAreCheckedAndTifMeansTiff() {
        assertThat(Container.parse(List.of("PDF", " tif ", "zip", "tar"))).containsExactlyInAnyOrder(Container.values());
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Container.parse(List.of("rar")))
                .hasMessage("unknown container type 'rar' (expected pdf, tiff, zip or tar)");
    }

    @Test
    void aListedFileThatCannotBeReadIsTheSourcesErrorNotAFailedItem() {
        Path missing = dir.resolve("nothing.pdf");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> new Expander(ExpandSpec.defaults())
                        .expand("nothing.pdf", missing.toUri().toString(), new LocalFileSource(missing), i -> { }))
                .isInstanceOf(java.nio.file.NoSuchFileException.class);
        assertThat(Files.exists(missing)).isFalse();
    }
}
