package io.vlmbatch.image;

import java.awt.image.BufferedImage;
import java.awt.image.DataBufferInt;
import java.io.ByteArrayInputStream;

import com.drew.imaging.FileType;
import com.drew.imaging.ImageMetadataReader;
import com.drew.metadata.Metadata;
import com.drew.metadata.exif.ExifIFD0Directory;

/**
 * EXIF orientation (tag 0x0112, values 1-8): how the stored pixels must be turned to appear upright.
 * Cameras store sensor rows as shot and set this tag instead of rotating the pixels.
 */
final class Orientation {

    static final int NORMAL = 1;

    private Orientation() {}

    /** The orientation recorded in the image's EXIF data, or {@link #NORMAL} when absent or unreadable. */
    static int read(byte[] data, ImageFormat format) {
        FileType type = switch (format) {
            case JPEG -> FileType.Jpeg;
            case TIFF -> FileType.Tiff;
            case PNG -> FileType.Png;
            case WEBP -> FileType.WebP;
            default -> null;
        };
        if (type == null) {
            return NORMAL;
        }
        try {
            Metadata metadata = ImageMetadataReader.readMetadata(new ByteArrayInputStream(data), data.length, type);
            for (ExifIFD0Directory dir : metadata.getDirectoriesOfType(ExifIFD0Directory.class)) {
                Integer value = dir.getInteger(ExifIFD0Directory.TAG_ORIENTATION);
                if (value != null && value >= 1 && value <= 8) {
                    return value;
                }
            }
        } catch (Exception e) {
            // Broken metadata must not fail an image whose pixels decode: show it as stored.
        }
        return NORMAL;
    }

    /** Whether the orientation swaps width and height (the 90-degree cases). */
    static boolean transposes(int orientation) {
        return orientation >= 5;
    }

    /** The image turned upright; {@code src} must be TYPE_INT_RGB. */
    static BufferedImage apply(BufferedImage src, int orientation) {
        if (orientation == NORMAL) {
            return src;
        }
        int w = src.getWidth();
        int h = src.getHeight();
        boolean swap = transposes(orientation);
        int dw = swap ? h : w;
        BufferedImage dst = new BufferedImage(dw, swap ? w : h, BufferedImage.TYPE_INT_RGB);
        int[] in = ((DataBufferInt) src.getRaster().getDataBuffer()).getData();
        int[] out = ((DataBufferInt) dst.getRaster().getDataBuffer()).getData();
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                // (dx, dy): where stored pixel (x, y) lands when displayed
                int dx;
                int dy;
                switch (orientation) {
                    case 2 -> { dx = w - 1 - x; dy = y; }          // mirrored left-right
                    case 3 -> { dx = w - 1 - x; dy = h - 1 - y; }  // rotated 180
                    case 4 -> { dx = x; dy = h - 1 - y; }          // mirrored top-bottom
                    case 5 -> { dx = y; dy = x; }                  // transposed
                    case 6 -> { dx = h - 1 - y; dy = x; }          // needs 90 clockwise
                    case 7 -> { dx = h - 1 - y; dy = w - 1 - x; }  // transversed
                    case 8 -> { dx = y; dy = w - 1 - x; }          // needs 90 counter-clockwise
                    default -> throw new IllegalArgumentException("EXIF orientation " + orientation);
                }
                out[dy * dw + dx] = in[y * w + x];
            }
        }
        return dst;
    }
}
