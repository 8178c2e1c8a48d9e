package io.vlmbatch.image;

/**
 * An image ready to send: RGB, upright, long side bounded, re-encoded.
 *
 * @param originalWidth  width of the source as displayed (after EXIF orientation), before scaling
 * @param originalHeight height of the source as displayed, before scaling
 */
public record PreparedImage(byte[] bytes, String mimeType, int width, int height, int originalWidth, int originalHeight) {

    /** The {@code data:} URL that OpenAI-style {@code image_url} parts carry. */
    public String dataUrl() {
        return "data:" + mimeType + ";base64," + java.util.Base64.getEncoder().encodeToString(bytes);
    }
}
