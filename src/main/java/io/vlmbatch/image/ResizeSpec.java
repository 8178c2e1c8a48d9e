package io.vlmbatch.image;

import java.util.Locale;

/**
 * How images are prepared for the model.
 *
 * @param maxSide   the long side is scaled down to at most this many pixels (never up)
 * @param maxPixels images whose header claims more pixels than this are rejected before decoding
 * @param format    "jpeg" or "png" for the re-encoded image
 * @param quality   JPEG quality in (0, 1]; ignored for PNG
 */
public record ResizeSpec(int maxSide, long maxPixels, String format, float quality) {

    public static final int DEFAULT_MAX_SIDE = 1120;
    public static final long DEFAULT_MAX_PIXELS = 100_000_000L;

    public ResizeSpec {
        if (maxSide < 1) {
            throw new IllegalArgumentException("maxSide must be positive, got " + maxSide);
        }
        if (maxPixels < 1) {
            throw new IllegalArgumentException("maxPixels must be positive, got " + maxPixels);
        }
        format = format == null ? "jpeg" : format.toLowerCase(Locale.ROOT);
        if (!format.equals("jpeg") && !format.equals("png")) {
            throw new IllegalArgumentException("format must be jpeg or png, got " + format);
        }
        if (!(quality > 0f && quality <= 1f)) {
            throw new IllegalArgumentException("quality must be in (0, 1], got " + quality);
        }
    }

    public static ResizeSpec defaults() {
        return new ResizeSpec(DEFAULT_MAX_SIDE, DEFAULT_MAX_PIXELS, "jpeg", 0.9f);
    }
}
