package io.vlmbatch.image;

import java.awt.image.BufferedImage;

/**
 * Turns the bytes of an uploaded image into what the model is sent: format recognised from the
 * content, size checked from the header before decoding (decompression bombs), first frame decoded,
 * converted to RGB, long side bounded, turned upright per EXIF, re-encoded. Thread-safe.
 */
public final class ImagePreparer {

    private final ResizeSpec spec;

    public ImagePreparer(ResizeSpec spec) {
        this.spec = spec == null ? ResizeSpec.defaults() : spec;
    }

    /**
     * @param name used only in messages of unexpected failures; the format comes from the content
     * @throws ImageRejectedException with the reason to record for the item
     */
    public PreparedImage prepare(byte[] data, String name) throws ImageRejectedException {
        if (data == null || data.length == 0) {
            throw new ImageRejectedException("empty file (0 bytes)");
        }
        ImageFormat format = ImageFormat.sniff(data);
        if (format == null) {
            throw new ImageRejectedException(ImageFormat.describeUnknown(data));
        }
        Decoder.Decoded decoded = Decoder.decode(data, format, spec);
        int orientation = Orientation.read(data, format);
        try {
            // Scaling before turning upright is the same result on fewer pixels.
            BufferedImage rgb = RgbConverter.toRgb(decoded.image());
            BufferedImage scaled = Downscaler.fit(rgb, spec.maxSide());
            BufferedImage upright = Orientation.apply(scaled, orientation);
            byte[] bytes = Encoder.encode(upright, spec.format(), spec.quality());
            boolean swap = Orientation.transposes(orientation);
            return new PreparedImage(bytes, spec.format().equals("png") ? "image/png" : "image/jpeg",
                    upright.getWidth(), upright.getHeight(),
                    swap ? decoded.height() : decoded.width(), swap ? decoded.width() : decoded.height());
        } catch (RuntimeException e) {
            // A decoder can hand back a raster that Java2D then chokes on (odd colour models).
            throw new ImageRejectedException("cannot convert " + format.displayName + " image"
                    + (name == null ? "" : " " + name) + ": " + e, e);
        }
    }

    /**
     * The same for pixels that are already decoded: a rendered PDF page or a TIFF frame (upright as
     * stored; there is no EXIF orientation to apply).
     */
    public PreparedImage prepare(BufferedImage decoded) throws ImageRejectedException {
        try {
            BufferedImage rgb = RgbConverter.toRgb(decoded);
            BufferedImage scaled = Downscaler.fit(rgb, spec.maxSide());
            byte[] bytes = Encoder.encode(scaled, spec.format(), spec.quality());
            return new PreparedImage(bytes, spec.format().equals("png") ? "image/png" : "image/jpeg",
                    scaled.getWidth(), scaled.getHeight(), decoded.getWidth(), decoded.getHeight());
        } catch (RuntimeException e) {
            throw new ImageRejectedException("cannot convert the page: " + e, e);
        }
    }
}
