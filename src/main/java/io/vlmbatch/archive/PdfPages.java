package io.vlmbatch.archive;

import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;

import java.util.List;
import java.util.Map;

import org.apache.pdfbox.Loader;
import org.apache.pdfbox.contentstream.operator.Operator;
import org.apache.pdfbox.cos.COSBase;
import org.apache.pdfbox.io.IOUtils;
import org.apache.pdfbox.pdmodel.PDDocument;
import org.apache.pdfbox.pdmodel.PDPage;
import org.apache.pdfbox.pdmodel.common.PDRectangle;
import org.apache.pdfbox.pdmodel.encryption.InvalidPasswordException;
import org.apache.pdfbox.rendering.ImageType;
import org.apache.pdfbox.rendering.PDFRenderer;
import org.apache.pdfbox.rendering.PageDrawer;
import org.apache.pdfbox.rendering.PageDrawerParameters;

/** A PDF's page count, and one page rendered, read in place through a channel (never loaded whole). */
final class PdfPages {

    /**
     * Bilinear instead of PDFBox's default bicubic for images: half the CPU on scanned pages (measured
     * by bench/archive_pages), and at the model's 1120 px the difference is not visible; shapes and
     * glyphs stay antialiased.
     */
    private static final RenderingHints FAST_HINTS = new RenderingHints(Map.of(
            RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR,
            RenderingHints.KEY_RENDERING, RenderingHints.VALUE_RENDER_SPEED,
            RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON));

    private PdfPages() {}

    /** An open document; close it to release the channel. */
    static PDDocument open(ByteSource source) throws IOException {
        ChannelRandomAccessRead read = new ChannelRandomAccessRead(source.openChannel());
        try {
            // Memory-only stream cache: PDFBox keeps nothing it creates while parsing on disk.
            return Loader.loadPDF(read, "", null, null, IOUtils.createMemoryOnlyStreamCache());
        } catch (InvalidPasswordException e) {
            read.close();
            throw new ArchiveRejectedException("encrypted PDF: a password is needed to open it", e);
        } catch (IOException | RuntimeException e) {
            read.close();
            throw new ArchiveRejectedException("corrupt PDF: " + Problems.describe(e), e);
        } catch (StackOverflowError e) {
            read.close(); // deeply nested or cyclic object graphs in hostile files
            throw new ArchiveRejectedException("corrupt PDF: object structure too deep to parse");
        }
    }

    static int pageCount(ByteSource source) throws IOException {
        try (PDDocument doc = open(source)) {
            return doc.getNumberOfPages();
        }
    }

    /**
     * Renders a 1-based page to RGB, its long side at {@code spec.maxSide()} pixels, or at
     * {@code spec.dpi()} when set; either way no more than {@code spec.maxPixels()} pixels.
     */
    static BufferedImage render(PDDocument doc, int page, RenderSpec spec) throws ArchiveRejectedException {
        int count = doc.getNumberOfPages();
        if (page < 1 || page > count) {
            throw new ArchiveRejectedException("page " + page + " does not exist (the PDF has " + count + " pages)");
        }
        try {
            PDPage p = doc.getPage(page - 1);
            PDRectangle box = p.getCropBox();
            float w = Math.max(1f, box.getWidth());
            float h = Math.max(1f, box.getHeight());
            float scale = spec.dpi() > 0 ? spec.dpi() / 72f : spec.maxSide() / Math.max(w, h);
            double pixels = (double) w * h * scale * scale;
            if (pixels > spec.maxPixels()) {
                scale *= (float) Math.sqrt(spec.maxPixels() / pixels);
            }
            PDFRenderer renderer = new StrictRenderer(doc);
            // Embedded scans far larger than the output are read subsampled: same look, much less work.
            renderer.setSubsamplingAllowed(true);
            renderer.setRenderingHints(FAST_HINTS);
            return renderer.renderImage(page - 1, scale, ImageType.RGB);
        } catch (IOException | RuntimeException e) {
            throw new ArchiveRejectedException("cannot render PDF page " + page + ": " + Problems.describe(e), e);
        } catch (StackOverflowError e) {
            throw new ArchiveRejectedException("cannot render PDF page " + page + ": content nested too deeply");
        }
    }

    /**
     * PDFBox draws on when an image or form on the page cannot be read (it logs and leaves a hole).
     * For OCR a page with its scan missing is worse than a failed page, so that failure is raised.
     */
    private static final class StrictRenderer extends PDFRenderer {

        StrictRenderer(PDDocument doc) {
            super(doc);
        }

        @Override
        protected PageDrawer createPageDrawer(PageDrawerParameters parameters) throws IOException {
            return new PageDrawer(parameters) {
                @Override
                protected void operatorException(Operator operator, List<COSBase> operands, IOException e)
                        throws IOException {
                    if ("Do".equals(operator.getName())) {
                        throw e;
                    }
                    super.operatorException(operator, operands, e);
                }
            };
        }
    }
}
