package io.vlmbatch.bench;

import io.vlmbatch.archive.ExpandSpec;
import io.vlmbatch.archive.Extracted;
import io.vlmbatch.archive.LocalFileSource;
import io.vlmbatch.archive.PageExtractor;
import io.vlmbatch.archive.RenderSpec;
import io.vlmbatch.bench.BenchReport.Column;
import io.vlmbatch.image.ImagePreparer;
import io.vlmbatch.image.ResizeSpec;
import io.vlmbatch.testsupport.ArchiveFiles;
import java.awt.Color;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.pdfbox.pdmodel.PDDocument;
import org.apache.pdfbox.pdmodel.PDPage;
import org.apache.pdfbox.pdmodel.PDPageContentStream;
import org.apache.pdfbox.pdmodel.common.PDRectangle;
import org.apache.pdfbox.pdmodel.graphics.image.JPEGFactory;

/**
 * Pages per second per core for what the processor does with a document page: PDF pages rendered at the
 * default size (long side 1120 px) and TIFF frames decoded, each opened from its lineage as a work item
 * is (document parsed again per page), one thread, CPU time of that thread, best of three rounds. The 300 dpi
 * LZW TIFFs are also read whole, as they were before frames were subsampled on read. Printed next to the
 * image figures of bench/results/pipeline_overhead.json. Writes bench/results/archive_pages.json.
 *
 * Run: bench/archive_pages [--pages N]
 */
public final class ArchivePagesBench {

    private static final ImagePreparer PREPARER = new ImagePreparer(ResizeSpec.defaults());

    record Row(String input, String pixels, int pages, double cpuMsPerPage, double wallMsPerPage, double pagesPerSecondPerCore,
               double preparedMsPerPage, double preparedPagesPerSecondPerCore) {}

    public static void main(String[] args) throws Exception {
        int pages = 24;
        for (int i = 0; i < args.length - 1; i++) {
            if (args[i].equals("--pages")) pages = Integer.parseInt(args[++i]);
        }
        Path work = Files.createTempDirectory("vlm-archive-bench");
        Path root = Path.of("").toAbsolutePath();
        PageExtractor extractor = new PageExtractor(ExpandSpec.defaults(), RenderSpec.defaults());
        // a target larger than any frame here: frames are decoded whole, through the same path
        PageExtractor wholeFrames = new PageExtractor(ExpandSpec.defaults(), new RenderSpec(4000, 0, RenderSpec.DEFAULT_MAX_PIXELS));
        List<Row> rows = new ArrayList<>();
        try {
            Color[] colors = new Color[pages];
            for (int i = 0; i < pages; i++) colors[i] = Color.getHSBColor(i / (float) pages, 0.7f, 0.8f);
            System.out.println("making inputs...");
            Map<String, Path> inputs = new LinkedHashMap<>();
            inputs.put("PDF, text (A4)", ArchiveFiles.write(work.resolve("text.pdf"), ArchiveFiles.textPdf(pages, "a line of body text")));
            inputs.put("PDF, scan 150 dpi (Letter, JPEG 1275x1650)", ArchiveFiles.write(work.resolve("scan150.pdf"), ArchiveFiles.scannedPdf(colors)));
            inputs.put("PDF, scan 300 dpi (Letter, JPEG 2550x3300)", ArchiveFiles.write(work.resolve("scan300.pdf"), scannedPdf300(colors)));
            inputs.put("PDF, scan 150 dpi, inside a ZIP", ArchiveFiles.write(work.resolve("scans.zip"),
                    ArchiveFiles.zip(ArchiveFiles.members("box/scan150.pdf", Files.readAllBytes(work.resolve("scan150.pdf"))))));
            int frames = Math.max(2, pages / 2);
            inputs.put("TIFF, bilevel CCITT G4 300 dpi (2550x3300)", ArchiveFiles.write(work.resolve("g4.tif"),
                    ArchiveFiles.multiPageTiff(2550, 3300, BufferedImage.TYPE_BYTE_BINARY, "CCITT T.6", java.util.Arrays.copyOf(colors, frames))));
            inputs.put("TIFF, gray LZW 300 dpi (2550x3300)", ArchiveFiles.write(work.resolve("gray.tif"),
                    ArchiveFiles.multiPageTiff(2550, 3300, BufferedImage.TYPE_BYTE_GRAY, "LZW", java.util.Arrays.copyOf(colors, frames))));
            inputs.put("TIFF, RGB LZW 150 dpi (1275x1650)", ArchiveFiles.write(work.resolve("rgb150.tif"),
                    ArchiveFiles.multiPageTiff(1275, 1650, java.util.Arrays.copyOf(colors, frames))));
            inputs.put("TIFF, RGB LZW 300 dpi (2550x3300)", ArchiveFiles.write(work.resolve("rgb300.tif"),
                    ArchiveFiles.multiPageTiff(2550, 3300, java.util.Arrays.copyOf(colors, frames))));
            for (Map.Entry<String, Path> input : inputs.entrySet()) {
                String member = input.getKey().contains("ZIP") ? "box/scan150.pdf" : "";
                int n = input.getKey().startsWith("TIFF") ? frames : pages;
                LocalFileSource source = new LocalFileSource(input.getValue());
                Page asItems = p -> ((Extracted.Page) extractor.extract(source, member, p)).image();
                if (input.getKey().contains("LZW 300 dpi")) {
                    // What subsampling the frame on read buys: the same frames read whole, as before it,
                    // measured in the same rounds so that a busy machine weighs on both alike.
                    Page whole = p -> ((Extracted.Page) wholeFrames.extract(source, member, p)).image();
                    Row[] both = measure(n, input.getKey(), asItems, input.getKey() + ", read whole", whole);
                    rows.add(both[0]);
                    rows.add(both[1]);
                } else {
                    rows.add(measure(n, input.getKey(), asItems)[0]);
                }
            }
        } finally {
            BenchRuns.deleteTree(work);
        }
        System.out.printf(Locale.ROOT, "%nDocument pages, default size (long side %d px), one thread (%s, Java %s)%n",
                RenderSpec.DEFAULT_MAX_SIDE, BenchReport.cpuModel(), Runtime.version());
        BenchReport.printTable(List.of(new Column("input", 44, "s"), new Column("decoded px", 11, "s"), new Column("pages", 6, "d"),
                new Column("extract ms/pg", 14, ".1f"), new Column("wall ms/pg", 13, ".1f"), new Column("pages/s/core", 15, ".1f"),
                new Column("+prepare ms/pg", 18, ".1f"), new Column("pages/s/core", 15, ".1f")),
                rows.stream().map(r -> new Object[] {r.input(), r.pixels(), r.pages(), r.cpuMsPerPage(), r.wallMsPerPage(),
                        r.pagesPerSecondPerCore(), r.preparedMsPerPage(), r.preparedPagesPerSecondPerCore()}).toList());
        System.out.println("extract: render the PDF page at long side 1120 / decode the TIFF frame; +prepare: then to RGB, bound to 1120 px, "
                + "JPEG q0.9 (the bytes sent to the model), as the processor does");
        printPipelineImages(root.resolve("bench/results/pipeline_overhead.json"));
        write(root.resolve("bench/results/archive_pages.json"), rows);
    }

    /** One page as a work item gets it: opened from its lineage, rendered or decoded. */
    private interface Page {
        BufferedImage get(int page) throws IOException;
    }

    /** Rounds over every page; each figure is the best round's (other load on the machine only adds time). */
    private static final int ROUNDS = 3;

    /**
     * Warm-up on the first pages, then every page once per round, as separate work items would; the
     * variants (name, Page, name, Page...) take turns within each round.
     */
    private static Row[] measure(int pages, Object... variants) throws IOException {
        int k = variants.length / 2;
        double[] cpu = new double[k], wall = new double[k], prepared = new double[k];
        java.util.Arrays.fill(cpu, Double.MAX_VALUE);
        java.util.Arrays.fill(wall, Double.MAX_VALUE);
        java.util.Arrays.fill(prepared, Double.MAX_VALUE);
        String[] pixels = new String[k];
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        for (int v = 0; v < k; v++) {
            for (int p = 1; p <= Math.min(3, pages); p++) ((Page) variants[2 * v + 1]).get(p);
        }
        for (int round = 0; round < ROUNDS; round++) {
            for (int v = 0; v < k; v++) {
                Page page = (Page) variants[2 * v + 1];
                long cpu0 = mx.getCurrentThreadCpuTime();
                long wall0 = System.nanoTime();
                BufferedImage last = null;
                for (int p = 1; p <= pages; p++) last = page.get(p);
                cpu[v] = Math.min(cpu[v], (mx.getCurrentThreadCpuTime() - cpu0) / 1e6 / pages);
                wall[v] = Math.min(wall[v], (System.nanoTime() - wall0) / 1e6 / pages);
                pixels[v] = last.getWidth() + "x" + last.getHeight();
                long p0 = mx.getCurrentThreadCpuTime();
                for (int p = 1; p <= pages; p++) {
                    try {
                        PREPARER.prepare(page.get(p));
                    } catch (io.vlmbatch.image.ImageRejectedException e) {
                        throw new IOException(e);
                    }
                }
                prepared[v] = Math.min(prepared[v], (mx.getCurrentThreadCpuTime() - p0) / 1e6 / pages);
            }
        }
        Row[] rows = new Row[k];
        for (int v = 0; v < k; v++) {
            String name = (String) variants[2 * v];
            System.out.printf(Locale.ROOT, "  %-44s %.1f ms/page, %.1f prepared%n", name, cpu[v], prepared[v]);
            rows[v] = new Row(name, pixels[v], pages, cpu[v], wall[v], 1000.0 / cpu[v], prepared[v], 1000.0 / prepared[v]);
        }
        return rows;
    }

    /** A 300 dpi scan per page (2550x3300 JPEG), as archival scanning produces. */
    private static byte[] scannedPdf300(Color[] colors) throws IOException {
        try (PDDocument doc = new PDDocument()) {
            for (Color c : colors) {
                PDPage page = new PDPage(PDRectangle.LETTER);
                doc.addPage(page);
                var image = JPEGFactory.createFromImage(doc, ArchiveFiles.scan(2550, 3300, c), 0.85f);
                try (PDPageContentStream cs = new PDPageContentStream(doc, page)) {
                    cs.drawImage(image, 0, 0, 612, 792);
                }
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            doc.save(out);
            return out.toByteArray();
        }
    }

    /** The pipeline-overhead bench's image rows, for comparison (its prepare column is the same kind of CPU). */
    private static void printPipelineImages(Path json) throws IOException {
        if (!Files.exists(json)) {
            return;
        }
        String text = Files.readString(json);
        Matcher m = Pattern.compile("\"size\": \"([^\"]+)\".*?\"images_per_s_per_core\": ([0-9.]+), \"prepare_cpu_ms_per_image\": ([0-9.]+)")
                .matcher(text);
        System.out.println("\nfor comparison, bench/results/pipeline_overhead.json (images, whole pipeline incl. PostgreSQL):");
        while (m.find()) {
            System.out.printf(Locale.ROOT, "  %-6s JPEG: prepare %s CPU ms/image, whole pipeline %s images/s/core%n",
                    m.group(1), m.group(3), m.group(2));
        }
    }

    private static void write(Path file, List<Row> rows) throws IOException {
        Map<String, Object> header = BenchReport.header("archive_pages", "PDF pages rendered at long side 1120 px and TIFF frames decoded "
                + "(extract), then prepared as the processor does (RGB, bounded to 1120 px, JPEG q0.9), each re-opened from its lineage as one "
                + "work item, one thread; CPU time of that thread, best of 3 rounds; 'read whole': the frame decoded at full size as before "
                + "subsampling on read");
        BenchReport.write(file, header, rows.stream().map(r -> BenchReport.row("input", r.input(), "decoded_pixels", r.pixels(),
                "pages", r.pages(), "extract_cpu_ms_per_page", BenchReport.fixed(r.cpuMsPerPage(), 2),
                "extract_wall_ms_per_page", BenchReport.fixed(r.wallMsPerPage(), 2),
                "extract_pages_per_s_per_core", BenchReport.fixed(r.pagesPerSecondPerCore(), 2),
                "prepared_cpu_ms_per_page", BenchReport.fixed(r.preparedMsPerPage(), 2),
                "prepared_pages_per_s_per_core", BenchReport.fixed(r.preparedPagesPerSecondPerCore(), 2))).toList());
    }
}
