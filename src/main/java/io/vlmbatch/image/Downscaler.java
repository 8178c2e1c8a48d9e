package io.vlmbatch.image;

import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.awt.image.DataBufferInt;

/**
 * Bounds the long side with a downscale that does not alias: 2x2 box averages while the image is at
 * least twice the target, then one bicubic step to the exact size. (A single bicubic step over a
 * large factor samples only a few source pixels per output pixel and turns fine texture into moiré.)
 */
final class Downscaler {

    private Downscaler() {}

    /** {@code src} must be TYPE_INT_RGB; returned as is when it already fits. */
    static BufferedImage fit(BufferedImage src, int maxSide) {
        int w = src.getWidth();
        int h = src.getHeight();
        int longSide = Math.max(w, h);
        if (longSide <= maxSide) {
            return src;
        }
        double scale = (double) maxSide / longSide;
        int tw = Math.max(1, (int) Math.round(w * scale));
        int th = Math.max(1, (int) Math.round(h * scale));
        if (w >= h) {
            tw = maxSide;
        } else {
            th = maxSide;
        }
        BufferedImage img = src;
        while (img.getWidth() >= 2 * tw && img.getHeight() >= 2 * th) {
            img = halve(img);
        }
        if (img.getWidth() == tw && img.getHeight() == th) {
            return img;
        }
        BufferedImage dst = new BufferedImage(tw, th, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = dst.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BICUBIC);
            g.setRenderingHint(RenderingHints.KEY_RENDERING, RenderingHints.VALUE_RENDER_QUALITY);
            g.drawImage(img, 0, 0, tw, th, null);
        } finally {
            g.dispose();
        }
        return dst;
    }

    /** Each output pixel is the rounded mean of a 2x2 block (an odd last row or column is dropped). */
    static BufferedImage halve(BufferedImage src) {
        int w = src.getWidth();
        int h = src.getHeight();
        int hw = w / 2;
        int hh = h / 2;
        BufferedImage dst = new BufferedImage(hw, hh, BufferedImage.TYPE_INT_RGB);
        int[] in = ((DataBufferInt) src.getRaster().getDataBuffer()).getData();
        int[] out = ((DataBufferInt) dst.getRaster().getDataBuffer()).getData();
        for (int y = 0; y < hh; y++) {
            int r0 = 2 * y * w;
            int r1 = r0 + w;
            int o = y * hw;
            for (int x = 0; x < hw; x++) {
                int a = in[r0 + 2 * x];
                int b = in[r0 + 2 * x + 1];
                int c = in[r1 + 2 * x];
                int d = in[r1 + 2 * x + 1];
                int red = (((a >> 16) & 0xFF) + ((b >> 16) & 0xFF) + ((c >> 16) & 0xFF) + ((d >> 16) & 0xFF) + 2) >> 2;
                int green = (((a >> 8) & 0xFF) + ((b >> 8) & 0xFF) + ((c >> 8) & 0xFF) + ((d >> 8) & 0xFF) + 2) >> 2;
                int blue = ((a & 0xFF) + (b & 0xFF) + (c & 0xFF) + (d & 0xFF) + 2) >> 2;
                out[o + x] = (red << 16) | (green << 8) | blue;
            }
        }
        return dst;
    }
}
