package io.vlmbatch.image;

import java.nio.charset.StandardCharsets;

/** The decodable formats, recognised by their leading bytes (a file's name says nothing reliable). */
enum ImageFormat {
    JPEG("JPEG", "jpeg"),
    PNG("PNG", "png"),
    GIF("GIF", "gif"),
    BMP("BMP", "bmp"),
    TIFF("TIFF", "tiff"),
    WEBP("WebP", "webp");

    final String displayName;
    final String imageIoName;

    ImageFormat(String displayName, String imageIoName) {
        this.displayName = displayName;
        this.imageIoName = imageIoName;
    }

    /** The format, or null when the bytes start like none of them. */
    static ImageFormat sniff(byte[] d) {
        if (startsWith(d, 0, 0xFF, 0xD8, 0xFF)) return JPEG;
        if (startsWith(d, 0, 0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A)) return PNG;
        if (startsWith(d, 0, 'G', 'I', 'F', '8') && d.length > 5 && (d[4] == '7' || d[4] == '9') && d[5] == 'a') return GIF;
        if (startsWith(d, 0, 'B', 'M') && d.length >= 26) return BMP;
        if (startsWith(d, 0, 'I', 'I', 42, 0) || startsWith(d, 0, 'M', 'M', 0, 42)
                || startsWith(d, 0, 'I', 'I', 43, 0) || startsWith(d, 0, 'M', 'M', 0, 43)) return TIFF;
        if (startsWith(d, 0, 'R', 'I', 'F', 'F') && startsWith(d, 8, 'W', 'E', 'B', 'P')) return WEBP;
        return null;
    }

    /** Why unrecognised bytes are not accepted, naming well-known formats we do not decode. */
    static String describeUnknown(byte[] d) {
        if (startsWith(d, 4, 'f', 't', 'y', 'p') && d.length >= 12) {
            String brand = new String(d, 8, 4, StandardCharsets.US_ASCII);
            if (brand.startsWith("hei") || brand.startsWith("mif1") || brand.startsWith("hev")) {
                return "unsupported image format: HEIC/HEIF";
            }
            if (brand.startsWith("avi")) {
                return "unsupported image format: AVIF";
            }
            return "unsupported format: ISO media (" + brand.strip() + ")";
        }
        if (startsWith(d, 0, 0x00, 0x00, 0x00, 0x0C, 'j', 'P') || startsWith(d, 0, 0xFF, 0x4F, 0xFF, 0x51)) {
            return "unsupported image format: JPEG 2000";
        }
        if (startsWith(d, 0, 0xFF, 0x0A) || startsWith(d, 4, 'J', 'X', 'L', ' ')) {
            return "unsupported image format: JPEG XL";
        }
        if (startsWith(d, 0, '%', 'P', 'D', 'F')) {
            return "unsupported format: PDF";
        }
        if (startsWith(d, 0, '8', 'B', 'P', 'S')) {
            return "unsupported image format: Photoshop PSD";
        }
        if (startsWith(d, 0, 0x00, 0x00, 0x01, 0x00)) {
            return "unsupported image format: ICO";
        }
        String head = new String(d, 0, Math.min(d.length, 512), StandardCharsets.ISO_8859_1).strip().toLowerCase();
        if (head.startsWith("<svg") || (head.startsWith("<?xml") && head.contains("<svg"))) {
            return "unsupported image format: SVG";
        }
        return looksLikeText(d) ? "not an image (unrecognised format; the content looks like text)"
                : "not an image (unrecognised format)";
    }

    private static boolean looksLikeText(byte[] d) {
        int n = Math.min(d.length, 4096);
        int control = 0;
        for (int i = 0; i < n; i++) {
            int b = d[i] & 0xFF;
            if (b == 0) return false;
            if (b < 0x20 && b != '\n' && b != '\r' && b != '\t' && b != '\f') control++;
        }
        return control * 100 <= n; // UTF-8 multibyte sequences are >= 0x80, so they count as text
    }

    private static boolean startsWith(byte[] d, int offset, int... magic) {
        if (d.length < offset + magic.length) return false;
        for (int i = 0; i < magic.length; i++) {
            if ((d[offset + i] & 0xFF) != (magic[i] & 0xFF)) return false;
        }
        return true;
    }
}
