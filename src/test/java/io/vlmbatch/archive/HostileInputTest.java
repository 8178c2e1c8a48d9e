package io.vlmbatch.archive;

import static io.vlmbatch.testsupport.ArchiveFiles.members;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vlmbatch.image.TestImages;
import io.vlmbatch.testsupport.ArchiveFiles;
import io.vlmbatch.testsupport.ImageFiles;
import java.awt.Color;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad and hostile input: a clear reason for the document, member or page, and everything else still runs. */
class HostileInputTest {

    @TempDir
    Path dir;

    private final PageExtractor extractor = new PageExtractor(ExpandSpec.defaults(), RenderSpec.defaults());

    @Test
    void anEncryptedPdfIsOneFailedItemWithAClearReason() throws Exception {
        Path pdf = ArchiveFiles.write(dir.resolve("locked.pdf"), ArchiveFiles.encryptedPdf("s3cret"));
        Expansions e = Expansions.of(dir, "locked.pdf");
        assertThat(e.keys()).containsExactly("locked.pdf");
        assertThat(e.items().getFirst().failure()).isEqualTo("encrypted PDF: a password is needed to open it");
        assertThatThrownBy(() -> extractor.extract(new LocalFileSource(pdf), "", 1))
                .isInstanceOf(ArchiveRejectedException.class).hasMessage("encrypted PDF: a password is needed to open it");
    }

    @Test
    void aCorruptPageFailsAloneAndTheOtherPagesRender() throws Exception {
        Path pdf = ArchiveFiles.write(dir.resolve("damaged.pdf"), ArchiveFiles.pdfWithCorruptPage());
        assertThat(Expansions.of(dir, "damaged.pdf").keys()).containsExactly("damaged.pdf#p1", "damaged.pdf#p2", "damaged.pdf#p3");
        assertThat(PageExtractorTest.colourAt(PageExtractorTest.page(extractor.extract(new LocalFileSource(pdf), "", 1)), 0.5, 0.25))
                .isEqualTo("red");
        assertThatThrownBy(() -> extractor.extract(new LocalFileSource(pdf), "", 2))
                .isInstanceOf(ArchiveRejectedException.class).hasMessageStartingWith("cannot render PDF page 2: ");
        assertThat(PageExtractorTest.colourAt(PageExtractorTest.page(extractor.extract(new LocalFileSource(pdf), "", 3)), 0.5, 0.25))
                .isEqualTo("red");
    }

    @Test
    void aPageThatDoesNotExistIsNamed() throws Exception {
        Path pdf = ArchiveFiles.write(dir.resolve("short.pdf"), ArchiveFiles.textPdf(3, "x"));
        assertThatThrownBy(() -> extractor.extract(new LocalFileSource(pdf), "", 9))
                .hasMessage("page 9 does not exist (the PDF has 3 pages)");
    }

    @Test
    void aPdfWithMorePagesThanMaxPagesIsRefusedAsAWhole() throws Exception {
        ArchiveFiles.write(dir.resolve("huge.pdf"), ArchiveFiles.blankPdf(5001));
        Expansions e = Expansions.of(dir, "huge.pdf");
        assertThat(e.keys()).containsExactly("huge.pdf");
        assertThat(e.items().getFirst().failure()).isEqualTo("the PDF has 5001 pages, more than source.max_pages = 5000");

        ArchiveFiles.write(dir.resolve("stack.tif"), ArchiveFiles.multiPageTiff(20, 20, Color.RED, Color.GREEN, Color.BLUE));
        Expansions tiff = Expansions.of(ExpandSpec.defaults().withMaxPages(2), dir, "stack.tif");
        assertThat(tiff.items().getFirst().failure()).isEqualTo("the TIFF has more than 2 pages, more than source.max_pages = 2");
    }

    @Test
    void aTruncatedZipStillListsAndServesTheMembersBeforeTheDamage() throws Exception {
        List<byte[]> images = Stream.of(1, 2, 3, 4).map(i -> TestImages.encode(TestImages.noise(64, 64, i), "png")).toList();
        byte[] zip = ArchiveFiles.zip(members("a.png", images.get(0), "b.png", images.get(1), "c.png", images.get(2),
                "d.png", images.get(3)), true);
        int cut = indexOf(zip, "c.png".getBytes()) + 5 + images.get(2).length / 2; // in the middle of c.png's data
        Path file = ArchiveFiles.write(dir.resolve("cut.zip"), Arrays.copyOf(zip, cut));
        Expansions e = Expansions.of(dir, "cut.zip");
        assertThat(e.keys()).containsExactly("cut.zip!/a.png", "cut.zip!/b.png", "cut.zip");
        assertThat(e.item("cut.zip").failure()).startsWith("truncated or corrupt ZIP (")
                .endsWith("); the 2 members before the damage are listed");
        assertThat(((Extracted.ImageBytes) extractor.extract(new LocalFileSource(file), "b.png", null)).bytes())
                .isEqualTo(images.get(1));
    }

    @Test
    void aTruncatedTarGzStillListsTheMembersBeforeTheDamage() throws Exception {
        List<byte[]> images = Stream.of(1, 2, 3).map(i -> TestImages.encode(TestImages.noise(64, 64, i), "png")).toList();
        byte[] tgz = ArchiveFiles.tarGz(members("a.png", images.get(0), "b.png", images.get(1), "c.png", images.get(2)));
        Path file = ArchiveFiles.write(dir.resolve("cut.tgz"), Arrays.copyOf(tgz, tgz.length * 5 / 6));
        Expansions e = Expansions.of(dir, "cut.tgz");
        assertThat(e.keys()).containsExactly("cut.tgz!/a.png", "cut.tgz!/b.png", "cut.tgz");
        assertThat(e.item("cut.tgz").failure()).startsWith("truncated or corrupt TAR.GZ (");
        assertThat(((Extracted.ImageBytes) extractor.extract(new LocalFileSource(file), "a.png", null)).bytes())
                .isEqualTo(images.get(0));
    }

    @Test
    void aZipBombMemberIsRefusedByItsRatioWhileTheOtherMembersRun() throws Exception {
        byte[] zeros = new byte[8 << 20]; // deflates about 1000:1
        Path file = ArchiveFiles.write(dir.resolve("bomb.zip"), ArchiveFiles.zip(members(
                "ok.jpg", ImageFiles.jpeg(20, 20, 1), "zeros.png", zeros)));
        Expansions e = Expansions.of(dir, "bomb.zip");
        assertThat(e.keys()).containsExactly("bomb.zip!/ok.jpg", "bomb.zip!/zeros.png");
        assertThat(e.item("bomb.zip!/ok.jpg").failed()).isFalse();
        assertThat(e.item("bomb.zip!/zeros.png").failure()).startsWith("ZIP bomb guard: the member inflates ")
                .endsWith("x, limit 200x)");
        assertThatThrownBy(() -> extractor.extract(new LocalFileSource(file), "zeros.png", null))
                .isInstanceOf(ArchiveRejectedException.class).hasMessageStartingWith("ZIP bomb guard");
    }

    @Test
    void tooManyMembersOrTooManyBytesRefuseTheWholeArchive() throws Exception {
        var many = new java.util.LinkedHashMap<String, byte[]>();
        for (int i = 0; i < 11; i++) {
            many.put("m" + i + ".jpg", new byte[200]);
        }
        ArchiveFiles.write(dir.resolve("many.zip"), ArchiveFiles.zip(many));
        ArchiveFiles.write(dir.resolve("many.tar"), ArchiveFiles.tar(many));
        ExpandSpec tenMembers = ExpandSpec.defaults().withBombLimits(10, ExpandSpec.DEFAULT_MAX_TOTAL_BYTES, 200);
        assertThat(Expansions.of(tenMembers, dir, "many.zip").items()).singleElement()
                .satisfies(i -> assertThat(i.failure()).isEqualTo("ZIP bomb guard: 11 entries, more than the limit of 10"));
        assertThat(Expansions.of(tenMembers, dir, "many.tar").items()).extracting(ExpandedItem::key).last()
                .isEqualTo("many.tar");

        ExpandSpec smallTotal = ExpandSpec.defaults().withBombLimits(100, 2000, 200);
        assertThat(Expansions.of(smallTotal, dir, "many.zip").items()).singleElement()
                .satisfies(i -> assertThat(i.failure()).isEqualTo(
                        "ZIP bomb guard: members add up to 2200 bytes uncompressed, more than the limit of 2000"));
    }

    @Test
    void aTarGzThatInflatesTooFarIsRefused() throws Exception {
        ArchiveFiles.write(dir.resolve("bomb.tar.gz"), ArchiveFiles.tarGz(members("ok.jpg", ImageFiles.jpeg(20, 20, 1),
                "zeros.bin", new byte[16 << 20])));
        Expansions e = Expansions.of(dir, "bomb.tar.gz");
        assertThat(e.keys()).containsExactly("bomb.tar.gz!/ok.jpg", "bomb.tar.gz");
        assertThat(e.item("bomb.tar.gz").failure()).startsWith("TAR.GZ bomb guard: ");
    }

    @Test
    void memberNamesWithDotDotAbsolutePathsAndControlBytesAreJustNames() throws Exception {
        byte[] a = ImageFiles.jpeg(20, 20, 1);
        byte[] b = ImageFiles.jpeg(20, 20, 2);
        byte[] c = ImageFiles.jpeg(20, 20, 3);
        Path work = Files.createDirectories(dir.resolve("work"));
        Path file = ArchiveFiles.write(work.resolve("evil.zip"), ArchiveFiles.zip(members(
                "../../escaped.jpg", a, "/etc/absolute.jpg", b, "line\nbreak\u0000.jpg", c)));
        Expansions e = Expansions.of(work, "evil.zip");
        assertThat(e.keys()).containsExactly("evil.zip!/../../escaped.jpg", "evil.zip!//etc/absolute.jpg",
                "evil.zip!/line\uFFFDbreak\uFFFD.jpg");
        assertThat(((Extracted.ImageBytes) extractor.extract(new LocalFileSource(file), "../../escaped.jpg", null)).bytes()).isEqualTo(a);
        assertThat(((Extracted.ImageBytes) extractor.extract(new LocalFileSource(file), "/etc/absolute.jpg", null)).bytes()).isEqualTo(b);
        assertThat(((Extracted.ImageBytes) extractor.extract(new LocalFileSource(file), "line\uFFFDbreak\uFFFD.jpg", null)).bytes()).isEqualTo(c);
        try (var files = Files.walk(dir)) {
            assertThat(files.filter(Files::isRegularFile).map(p -> dir.relativize(p).toString()))
                    .containsExactly("work/evil.zip"); // nothing was written anywhere
        }
        assertThat(Files.exists(Path.of("/etc/absolute.jpg"))).isFalse();
    }

    @Test
    void aMemberLargerThanTheMemberLimitIsRefusedWhenRead() throws Exception {
        Path file = ArchiveFiles.write(dir.resolve("big.tar"), ArchiveFiles.tar(members("big.jpg", new byte[5000])));
        ExpandSpec small = new ExpandSpec(Container.all(), 5000, 4, 100, 1 << 20, 200, 1 << 20, 4096);
        assertThatThrownBy(() -> new PageExtractor(small, RenderSpec.defaults()).extract(new LocalFileSource(file), "big.jpg", null))
                .hasMessage("member of 5000 bytes, more than the limit of 4096");
        assertThatThrownBy(() -> extractor.extract(new LocalFileSource(file), "nope.jpg", null))
                .hasMessage("no member nope.jpg in " + file.toUri());
    }

    @Test
    void aFileThatIsNotAContainerIsPassedThroughForTheProcessorToJudge() throws Exception {
        ArchiveFiles.write(dir.resolve("notes.docx.pdf"), "not a pdf at all".getBytes());
        ArchiveFiles.write(dir.resolve("fake.zip"), "PK but not really".getBytes());
        assertThat(Expansions.of(dir, "notes.docx.pdf").items()).singleElement().satisfies(i -> assertThat(i.failed()).isFalse());
        Expansions fake = Expansions.of(dir, "fake.zip");
        assertThat(fake.keys()).containsExactly("fake.zip");
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError("not found");
    }
}
