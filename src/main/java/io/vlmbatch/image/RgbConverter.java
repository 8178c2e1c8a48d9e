package io.vlmbatch.image;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.ComponentColorModel;
import java.awt.image.Raster;

/**
 * Any decoded image to opaque 8-bit sRGB ({@code TYPE_INT_RGB}); transparency is flattened on white,
 * which is how a page or a product photo with a cut-out background is meant to be seen.
 */
final class RgbConverter {

    private RgbConverter() {}

    static BufferedImage toRgb(BufferedImage src) {
        if (src.getType() == BufferedImage.TYPE_INT_RGB) {
            return src;
        }
        ColorModel cm = src.getColorModel();
        if (cm instanceof ComponentColorModel && cm.getColorSpace().getType() == ColorSpace.TYPE_GRAY) {
            return greyToRgb(src);
        }
        // Java2D converts palette, 16-bit, BGR and CMYK (through its colour space) to sRGB here.
        BufferedImage rgb = new BufferedImage(src.getWidth(), src.getHeight(), BufferedImage.TYPE_INT_RGB);
        Graphics2D g = rgb.createGraphics();
        try {
            if (cm.hasAlpha()) {
                g.setColor(Color.WHITE);
                g.fillRect(0, 0, src.getWidth(), src.getHeight());
            }
            g.drawImage(src, 0, 0, null);
        } finally {
            g.dispose();
        }
        return rgb;
    }

    /**
     * Grey samples are copied as they are. Java2D would treat the JDK's grey colour space as linear
     * and brighten mid-tones on the way to sRGB, but grey PNGs and JPEGs hold gamma-encoded values.
     */
    private static BufferedImage greyToRgb(BufferedImage src) {
        int w = src.getWidth();
        int h = src.getHeight();
        Raster raster = src.getRaster();
        int bits = src.getColorModel().getComponentSize(0);
        double scale = 255.0 / ((1L << bits) - 1);
        boolean alpha = src.getColorModel().hasAlpha();
        double alphaScale = alpha ? 1.0 / ((1L << src.getColorModel().getComponentSize(1)) - 1) : 0;
        BufferedImage rgb = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        int[] grey = new int[w];
        int[] a = new int[w];
        int[] row = new int[w];
        for (int y = 0; y < h; y++) {
            raster.getSamples(0, y, w, 1, 0, grey);
            if (alpha) {
                raster.getSamples(0, y, w, 1, 1, a);
            }
            for (int x = 0; x < w; x++) {
                double v = grey[x] * scale;
                if (alpha) {
                    double t = a[x] * alphaScale;
                    v = v * t + 255.0 * (1 - t);
                }
                int g = (int) Math.round(v);
                row[x] = (g << 16) | (g << 8) | g;
            }
            rgb.setRGB(0, y, w, 1, row, 0, w);
        }
        return rgb;
    }
}
