package io.vlmbatch.archive;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.util.Iterator;

import javax.imageio.ImageIO;
import javax.imageio.ImageReadParam;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/** A TIFF's frame count, and one frame decoded, read in place through a channel. */
final class TiffFrames {


    static {
        ImageIO.setUseCache(false);
        ImageIO.scanForPlugins();
    }

    private TiffFrames() {}

    /**
     * Counts frames by walking the IFD chain, stopping once past {@code stopAfter} (a hostile file can
     * chain millions of directories; the caller refuses the document then).
     */
    static int frameCount(ByteSource source, int stopAfter) throws IOException {
        ImageReader reader = reader();
        try (ImageInputStream in = new ChannelImageInputStream(source.openChannel())) {
            reader.setInput(in, false, true);
            int n = 0;
            try {
                while (n <= stopAfter) {
                    reader.getWidth(n); // reads that directory; IndexOutOfBounds past the last
                    n++;
                }
            } catch (IndexOutOfBoundsException end) {
                // walked past the last frame
            } catch (IOException | RuntimeException e) {
                if (n == 0) {
                    throw new ArchiveRejectedException("corrupt TIFF: " + Problems.describe(e), e);
                }
                // a broken link after frame n: the frames before it still count
            }
            if (n == 0) {
                throw new ArchiveRejectedException("corrupt TIFF: no image in the file");
            }
            return n;
        } finally {
            reader.dispose();
        }
    }

    /** Decodes a 1-based frame; its pixel count is checked from the header before decoding. */
    static BufferedImage decode(ByteSource source, int frame, RenderSpec spec) throws IOException {
        ImageReader reader = reader();
        try (ImageInputStream in = new ChannelImageInputStream(source.openChannel())) {
            reader.setInput(in, false, true);
            int index = frame - 1;
            int width;
            int height;
            try {
                width = reader.getWidth(index);
                height = reader.getHeight(index);
            } catch (IndexOutOfBoundsException e) {
                throw new ArchiveRejectedException("TIFF frame " + frame + " does not exist");
            } catch (IOException | RuntimeException e) {
                throw new ArchiveRejectedException("corrupt TIFF frame " + frame + ": " + Problems.describe(e), e);
            }
            long pixels = (long) width * height;
            if (width <= 0 || height <= 0) {
                throw new ArchiveRejectedException("corrupt TIFF frame " + frame + ": size " + width + "x" + height);
            }
            if (pixels > spec.maxPixels()) {
                throw new ArchiveRejectedException("TIFF frame " + frame + " too large: " + width + "x" + height
                        + " exceeds the " + spec.maxPixels() + "-pixel limit");
            }
            ImageReadParam param = reader.getDefaultReadParam();
            int step = bilevel(reader, index) ? 1 : subsampling(width, height, spec.maxSide());
            if (step > 1) {
                param.setSourceSubsampling(step, step, 0, 0);
            }
            try {
                return reader.read(index, param);
            } catch (IOException | RuntimeException e) {
                throw new ArchiveRejectedException("corrupt TIFF frame " + frame + ": " + Problems.describe(e), e);
            }
        } finally {
            reader.dispose();
        }
    }

    /**
     * Every n-th pixel of a frame at least twice the target size, keeping at least the target size: a
     * 300 dpi scan (3300 px) is read at 1650 px, then averaged down to 1120 by the preparer. Converting
     * and averaging a full 300 dpi frame costs about three times its decoding, and the model never
     * sees more than the target size.
     */
    static int subsampling(int width, int height, int maxSide) {
        return Math.max(1, Math.max(width, height) / maxSide);
    }

    /**
     * One bit per pixel (a fax-style scan): read whole, because dropping rows and columns would lose
     * strokes a pixel thin that the averaging downscale keeps as grey; such frames decode cheaply anyway.
     */
    private static boolean bilevel(ImageReader reader, int index) {
        try {
            var type = reader.getRawImageType(index);
            return type != null && type.getNumBands() == 1 && type.getBitsPerBand(0) == 1;
        } catch (IOException | RuntimeException e) {
            return false; // the read that follows reports what is wrong with the frame
        }
    }

    private static ImageReader reader() throws ArchiveRejectedException {
        Iterator<ImageReader> readers = ImageIO.getImageReadersByFormatName("tiff");
        if (!readers.hasNext()) {
            throw new ArchiveRejectedException("no TIFF decoder installed");
        }
        return readers.next();
    }
}
