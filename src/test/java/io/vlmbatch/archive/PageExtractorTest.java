package io.vlmbatch.archive;

import static io.vlmbatch.testsupport.ArchiveFiles.members;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vlmbatch.testsupport.ArchiveFiles;
import io.vlmbatch.testsupport.ImageFiles;
import java.awt.Color;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The processor's side: each listed item is rendered, decoded or extracted again from its lineage alone. */
class PageExtractorTest {

    @TempDir
    Path dir;

    private final PageExtractor extractor = new PageExtractor(ExpandSpec.defaults(), RenderSpec.defaults());

    @Test
    void aPdfPageRendersWithItsLongSideAtMaxSideAndShowsItsText() throws Exception {
        Path pdf = ArchiveFiles.write(dir.resolve("doc.pdf"), ArchiveFiles.textPdf(3, "hello"));
        BufferedImage page = page(extractor.extract(new LocalFileSource(pdf), "", 2));
        // A4 portrait: 595 x 842 pt -> 791 x 1120 px
        assertThat(page.getHeight()).isEqualTo(1120);
        assertThat(page.getWidth()).isBetween(790, 793);
        assertThat(darkFraction(page)).isBetween(0.002, 0.2); // black type on white paper
    }

    @Test
    void renderedWithSaysWithoutRenderingWhatExtractWouldReport() throws Exception {
        Path zip = ArchiveFiles.write(dir.resolve("box.zip"), ArchiveFiles.zip(members(
                "in/doc.pdf", ArchiveFiles.textPdf(2, "dpi"),
                "stack.tif", ArchiveFiles.multiPageTiff(60, 80, Color.RED, Color.BLUE),
                "a.jpg", ImageFiles.jpeg(40, 30, 1))));
        PageExtractor at100 = new PageExtractor(ExpandSpec.defaults(), new RenderSpec(1120, 100, RenderSpec.DEFAULT_MAX_PIXELS));
        for (PageExtractor e : List.of(extractor, at100)) {
            for (String member : List.of("in/doc.pdf", "stack.tif")) {
                Extracted.Page page = (Extracted.Page) e.extract(new LocalFileSource(zip), member, 2);
                assertThat(e.renderedWith(new LocalFileSource(zip), member, 2)).as(member).isEqualTo(page.renderedWith());
            }
        }
        assertThat(at100.renderedWith(new LocalFileSource(zip), "in/doc.pdf", 1)).isEqualTo("pdf.dpi=100");
        assertThat(extractor.renderedWith(new LocalFileSource(zip), "in/doc.pdf", 1)).isNull();
        // hostile lineages: a page of an image, a member that climbs out, one that does not exist
        assertThatThrownBy(() -> extractor.renderedWith(new LocalFileSource(zip), "a.jpg", 1))
                .isInstanceOf(ArchiveRejectedException.class).hasMessageContaining("not a PDF or TIFF");
        assertThatThrownBy(() -> extractor.renderedWith(new LocalFileSource(zip), "../../etc/passwd", 1))
                .isInstanceOf(ArchiveRejectedException.class).hasMessageContaining("no member");
    }

    @Test
    void aDpiOverridesMaxSide() throws Exception {
        Path pdf = ArchiveFiles.write(dir.resolve("doc.pdf"), ArchiveFiles.textPdf(1, "dpi"));
        PageExtractor at100 = new PageExtractor(ExpandSpec.defaults(), new RenderSpec(1120, 100, RenderSpec.DEFAULT_MAX_PIXELS));
        BufferedImage page = page(at100.extract(new LocalFileSource(pdf), "", 1));
        assertThat(page.getWidth()).isBetween(826, 827); // 8.27 in x 100 dpi
        assertThat(page.getHeight()).isBetween(1169, 1170);
    }

    @Test
    void eachPageOfAScannedPdfShowsItsOwnScan() throws Exception {
        Path pdf = ArchiveFiles.write(dir.resolve("scan.pdf"), ArchiveFiles.scannedPdf(Color.RED, new Color(0, 160, 0)));
        BufferedImage p1 = page(extractor.extract(new LocalFileSource(pdf), "", 1));
        BufferedImage p2 = page(extractor.extract(new LocalFileSource(pdf), "", 2));
        assertThat(Math.max(p1.getWidth(), p1.getHeight())).isEqualTo(1120);
        assertThat(colourAt(p1, 0.5, 0.25)).isEqualTo("red");
        assertThat(colourAt(p2, 0.5, 0.25)).isEqualTo("green");
    }

    @Test
    void aLargeTiffFrameIsReadSubsampledToAtLeastTheTargetSizeButABilevelOneWhole() throws Exception {
        Path gray = ArchiveFiles.write(dir.resolve("gray.tif"), ArchiveFiles.multiPageTiff(2550, 3300,
                BufferedImage.TYPE_BYTE_GRAY, "LZW", Color.RED, Color.BLUE));
        BufferedImage g = page(extractor.extract(new LocalFileSource(gray), "", 2));
        assertThat(g.getWidth()).isEqualTo(1275); // every 2nd pixel: 1650 px >= 1120, then averaged down by the preparer
        assertThat(g.getHeight()).isEqualTo(1650);
        Path g4 = ArchiveFiles.write(dir.resolve("g4.tif"), ArchiveFiles.multiPageTiff(2550, 3300,
                BufferedImage.TYPE_BYTE_BINARY, "CCITT T.6", Color.RED, Color.BLUE));
        BufferedImage b = page(extractor.extract(new LocalFileSource(g4), "", 1));
        assertThat(b.getWidth()).isEqualTo(2550); // thin strokes kept for the averaging downscale
        assertThat(TiffFrames.subsampling(2239, 1000, 1120)).isEqualTo(1);
        assertThat(TiffFrames.subsampling(10000, 3000, 1120)).isEqualTo(8); // 1250 px
    }

    @Test
    void aTiffFrameDecodesToItsOwnPicture() throws Exception {
        Path tif = ArchiveFiles.write(dir.resolve("stack.tif"),
                ArchiveFiles.multiPageTiff(400, 600, Color.RED, new Color(0, 160, 0), Color.BLUE));
        BufferedImage f3 = page(extractor.extract(new LocalFileSource(tif), "", 3));
        assertThat(f3.getWidth()).isEqualTo(400);
        assertThat(colourAt(f3, 0.5, 0.25)).isEqualTo("blue");
        assertThat(colourAt(page(extractor.extract(new LocalFileSource(tif), "", 2)), 0.5, 0.25)).isEqualTo("green");
    }

    @Test
    void membersComeBackByteForByteFromZipTarAndTarGz() throws Exception {
        byte[] jpeg = ImageFiles.jpeg(80, 60, 7);
        var content = members("dir/a.jpg", ImageFiles.jpeg(10, 10, 1), "dir/b.jpg", jpeg);
        for (var archive : List.of(
                java.util.Map.entry("m.zip", ArchiveFiles.zip(content)),
                java.util.Map.entry("s.zip", ArchiveFiles.zip(content, true)),
                java.util.Map.entry("m.tar", ArchiveFiles.tar(content)),
                java.util.Map.entry("m.tar.gz", ArchiveFiles.tarGz(content)))) {
            Path file = ArchiveFiles.write(dir.resolve(archive.getKey()), archive.getValue());
            Extracted got = extractor.extract(new LocalFileSource(file), "dir/b.jpg", null);
            assertThat(((Extracted.ImageBytes) got).bytes()).as(archive.getKey()).isEqualTo(jpeg);
        }
    }

    @Test
    void aPdfPageInsideAZipInsideATarGzRendersFromItsLineage() throws Exception {
        byte[] inner = ArchiveFiles.zip(members("letters/1903.pdf", ArchiveFiles.scannedPdf(Color.RED, Color.BLUE)));
        Path file = ArchiveFiles.write(dir.resolve("archive.tar.gz"), ArchiveFiles.tarGz(members("box1.zip", inner)));
        List<ExpandedItem> items = Expansions.of(dir, "archive.tar.gz").items();
        ExpandedItem second = items.get(1);
        BufferedImage page = page(extractor.extract(new LocalFileSource(file), second.lineage().member(), second.lineage().page()));
        assertThat(colourAt(page, 0.5, 0.25)).isEqualTo("blue");
    }

    @Test
    void aSourceReadOnlyByStreamingServesPdfsAndZipsThroughTheBlockCache() throws Exception {
        // Like an S3 object read with ranged GETs: no file channel, only "stream from offset".
        byte[] zip = ArchiveFiles.zip(members("a.jpg", ImageFiles.jpeg(30, 30, 1),
                "scan.pdf", ArchiveFiles.scannedPdf(Color.RED, Color.BLUE, Color.RED)));
        Path file = ArchiveFiles.write(dir.resolve("remote.zip"), zip);
        StreamOnlySource remote = new StreamOnlySource(new LocalFileSource(file));
        List<ExpandedItem> items = new java.util.ArrayList<>();
        new Expander(ExpandSpec.defaults()).expand("remote.zip", remote.name(), remote, items::add);
        assertThat(items).extracting(ExpandedItem::key)
                .containsExactly("remote.zip!/a.jpg", "remote.zip!/scan.pdf#p1", "remote.zip!/scan.pdf#p2", "remote.zip!/scan.pdf#p3");
        BufferedImage p2 = page(extractor.extract(remote, "scan.pdf", 2));
        assertThat(colourAt(p2, 0.5, 0.25)).isEqualTo("blue");
        assertThat(remote.opens).isGreaterThan(0);
    }

    @Test
    void aMemberNameContainingTheSeparatorIsStillFound() throws Exception {
        byte[] jpeg = ImageFiles.jpeg(20, 20, 9);
        Path file = ArchiveFiles.write(dir.resolve("odd.zip"), ArchiveFiles.zip(members("x.zip!/a.jpg", jpeg)));
        List<ExpandedItem> items = Expansions.of(dir, "odd.zip").items();
        assertThat(items).extracting(ExpandedItem::key).containsExactly("odd.zip!/x.zip!/a.jpg");
        Extracted got = extractor.extract(new LocalFileSource(file), items.getFirst().lineage().member(), null);
        assertThat(((Extracted.ImageBytes) got).bytes()).isEqualTo(jpeg);
    }

    static BufferedImage page(Extracted extracted) {
        assertThat(extracted).isInstanceOf(Extracted.Page.class);
        return ((Extracted.Page) extracted).image();
    }

    static double darkFraction(BufferedImage img) {
        long dark = 0;
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                int rgb = img.getRGB(x, y);
                if (((rgb >> 16) & 0xFF) + ((rgb >> 8) & 0xFF) + (rgb & 0xFF) < 200) {
                    dark++;
                }
            }
        }
        return (double) dark / ((long) img.getWidth() * img.getHeight());
    }

    static String colourAt(BufferedImage img, double fx, double fy) {
        int rgb = img.getRGB((int) (img.getWidth() * fx), (int) (img.getHeight() * fy));
        int r = (rgb >> 16) & 0xFF, g = (rgb >> 8) & 0xFF, b = rgb & 0xFF;
        if (r > 180 && g < 80 && b < 80) return "red";
        if (g > 120 && r < 80 && b < 80) return "green";
        if (b > 180 && r < 80 && g < 80) return "blue";
        return String.format("#%06x", rgb & 0xFFFFFF);
    }

    /** Serves a file only as "a stream from an offset", counting opens. */
    static final class StreamOnlySource implements ByteSource {
        private final ByteSource file;
        int opens;

        StreamOnlySource(ByteSource file) {
            this.file = file;
        }

        @Override
        public String name() {
            return file.name();
        }

        @Override
        public long size() throws IOException {
            return file.size();
        }

        @Override
        public InputStream openAt(long offset) throws IOException {
            opens++;
            return file.openAt(offset);
        }
    }
}
