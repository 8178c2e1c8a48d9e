package io.vlmbatch.archive;

/**
 * How pages become pixels.
 *
 * @param maxSide   a PDF page is rendered so its long side is this many pixels (the model's input size);
 *                  a TIFF frame at least twice this is read with every n-th pixel, keeping at least this (1-bit frames whole)
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

    /**
     * What shapes a rendered PDF page beyond resize.max_side and max_pixels (which the ledger's fingerprint
     * holds already): the dpi when one is set, so that changing it asks again. Null with the default,
     * which keeps the fingerprints of jobs without {@code pdf:} as they were.
     */
    public String pdfSettings() {
        return dpi > 0 ? "pdf.dpi=" + dpi : null;
    }

    public static RenderSpec defaults() {
        return new RenderSpec(DEFAULT_MAX_SIDE, 0, DEFAULT_MAX_PIXELS);
    }
}
