package io.vlmbatch.image;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

import javax.imageio.ImageIO;
import javax.imageio.ImageReadParam;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

import com.twelvemonkeys.imageio.stream.ByteArrayImageInputStream;

/**
 * Reads the first frame of an image with ImageIO (JDK codecs for PNG/GIF/BMP, TwelveMonkeys for
 * JPEG, TIFF and WebP), checking the pixel count from the header before any pixel is decoded.
 */
final class Decoder {

    /** Above this many pixels, decode at a reduced resolution (see {@link #subsampling}). */
    private static final long FULL_DECODE_PIXELS = 24_000_000L;

    static {
        // Readers read from memory here; ImageIO's default disk cache would only add temp files.
        ImageIO.setUseCache(false);
        // Registers the TwelveMonkeys plugins visible to this class loader (also inside a Boot jar).
        ImageIO.scanForPlugins();
    }

    record Decoded(BufferedImage image, int width, int height) {}

    private Decoder() {}

    static Decoded decode(byte[] data, ImageFormat format, ResizeSpec spec) throws ImageRejectedException {
        ImageReader reader = readerFor(format);
        List<String> warnings = new ArrayList<>();
        reader.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
        try (ImageInputStream in = new ByteArrayImageInputStream(data)) {
            reader.setInput(in, true, false);
            int width;
            int height;
            try {
                width = reader.getWidth(0);
                height = reader.getHeight(0);
            } catch (IOException | RuntimeException e) {
                throw corrupt(format, e);
            }
            if (width <= 0 || height <= 0) {
                throw new ImageRejectedException("corrupt " + format.displayName + ": header gives a size of "
                        + width + "x" + height);
            }
            long pixels = (long) width * height;
            if (pixels > spec.maxPixels()) {
                throw new ImageRejectedException("image too large: " + width + "x" + height + " = "
                        + pixelCount(pixels) + " exceeds the " + pixelCount(spec.maxPixels()) + " limit");
            }
            ImageReadParam param = reader.getDefaultReadParam();
            int step = subsampling(width, height, spec.maxSide());
            if (step > 1) {
                param.setSourceSubsampling(step, step, 0, 0);
            }
            BufferedImage image;
            try {
                image = reader.read(0, param);
            } catch (IOException | RuntimeException e) {
                throw corrupt(format, e);
            }
            for (String warning : warnings) {
                if (isTruncation(warning)) {
                    throw new ImageRejectedException(prefix(format) + warning);
                }
            }
            return new Decoded(image, width, height);
        } catch (IOException e) {
            throw corrupt(format, e);
        } finally {
            reader.dispose();
        }
    }

    /**
     * Very large images are decoded with every n-th pixel, keeping at least twice the target size
     * so the downscale still has real detail to average; a 100 Mpx frame at full resolution would
     * hold 300-400 MB per worker thread.
     */
    static int subsampling(int width, int height, int maxSide) {
        if ((long) width * height <= FULL_DECODE_PIXELS) {
            return 1;
        }
        return Math.max(1, Math.max(width, height) / (2 * maxSide));
    }

    private static ImageReader readerFor(ImageFormat format) throws ImageRejectedException {
        Iterator<ImageReader> readers = ImageIO.getImageReadersByFormatName(format.imageIoName);
        if (!readers.hasNext()) {
            throw new ImageRejectedException("unsupported image format: " + format.displayName
                    + " (no decoder installed)");
        }
        return readers.next();
    }

    private static boolean isTruncation(String warning) {
        String w = warning.toLowerCase();
        return w.contains("premature end") || w.contains("truncated") || w.contains("unexpected end");
    }

    private static ImageRejectedException corrupt(ImageFormat format, Throwable e) {
        return new ImageRejectedException(prefix(format) + describe(e), e);
    }

    private static String prefix(ImageFormat format) {
        return format == ImageFormat.JPEG ? "truncated or corrupt JPEG: " : "corrupt " + format.displayName + ": ";
    }

    /** The most specific message in the cause chain; EOF without a message reads as "unexpected end of data". */
    private static String describe(Throwable e) {
        String message = null;
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof java.io.EOFException) {
                return "unexpected end of data";
            }
            if (t.getMessage() != null && !t.getMessage().isBlank()) {
                message = t.getMessage();
            }
        }
        return message != null ? message : e.getClass().getSimpleName();
    }

    /** "900 Mpx", "12.5 Mpx", or "20000 px" below a megapixel. */
    static String pixelCount(long pixels) {
        if (pixels < 1_000_000) {
            return pixels + " px";
        }
        double mpx = pixels / 1e6;
        return (mpx == Math.rint(mpx) ? String.valueOf((long) mpx) : String.format(java.util.Locale.ROOT, "%.1f", mpx)) + " Mpx";
    }
}
