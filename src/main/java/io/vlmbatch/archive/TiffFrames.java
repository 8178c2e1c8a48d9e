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

    /** Above this many pixels a frame is decoded subsampled (see {@link #subsampling}). */
    private static final long FULL_DECODE_PIXELS = 24_000_000L;

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
            int step = subsampling(width, height, spec.maxSide());
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

    /** Every n-th pixel of a very large frame, keeping at least twice the target size for the downscale. */
    static int subsampling(int width, int height, int maxSide) {
        if ((long) width * height <= FULL_DECODE_PIXELS) {
            return 1;
        }
        return Math.max(1, Math.max(width, height) / (2 * maxSide));
    }

    private static ImageReader reader() throws ArchiveRejectedException {
        Iterator<ImageReader> readers = ImageIO.getImageReadersByFormatName("tiff");
        if (!readers.hasNext()) {
            throw new ArchiveRejectedException("no TIFF decoder installed");
        }
        return readers.next();
    }
}
