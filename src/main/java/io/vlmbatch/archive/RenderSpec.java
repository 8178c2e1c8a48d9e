package io.vlmbatch.archive;

/**
 * How pages become pixels.
 *
 * @param maxSide   a PDF page is rendered so its long side is this many pixels (the model's input size);
 *                  a TIFF frame is decoded at no more than about twice this when it is very large
 * @param dpi       when positive, PDF pages render at this resolution instead (still bounded by maxPixels)
 * @param maxPixels a rendered page or a TIFF frame claiming more pixels is scaled down / refused
 */
public record RenderSpec(int maxSide, int dpi, long maxPixels) {

    public static final int DEFAULT_MAX_SIDE = 1120;
    public static final long DEFAULT_MAX_PIXELS = 100_000_000L;

    public RenderSpec {
        if (maxSide < 1) {
            throw new IllegalArgumentException("maxSide must be positive, got " + maxSide);
        }
        if (dpi < 0 || dpi > 2400) {
            throw new IllegalArgumentException("dpi must be between 1 and 2400 (or 0 for max_side), got " + dpi);
        }
        if (maxPixels < 1) {
            throw new IllegalArgumentException("maxPixels must be positive, got " + maxPixels);
        }
    }

    public static RenderSpec defaults() {
        return new RenderSpec(DEFAULT_MAX_SIDE, 0, DEFAULT_MAX_PIXELS);
    }
}
