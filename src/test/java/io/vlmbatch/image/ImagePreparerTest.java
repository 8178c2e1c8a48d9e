package io.vlmbatch.image;

import static io.vlmbatch.image.TestImages.encode;
import static io.vlmbatch.image.TestImages.quadrants;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.IndexColorModel;
import java.awt.image.WritableRaster;
import java.awt.color.ColorSpace;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ImagePreparerTest {

    private static final Color RED = new Color(220, 30, 30);
    private static final Color GREEN = new Color(30, 200, 30);
    private static final Color BLUE = new Color(30, 30, 220);
    private static final Color WHITE = Color.WHITE;

    /* Made with Pillow 11: Image.new("RGB", (32, 24), red) with the right half blue, saved as
       WEBP quality=90 (lossy, VP8); the lossless one (VP8L) has its bottom half fully transparent;
       the CMYK JPEG is the same image .convert("CMYK") saved as JPEG (Adobe APP14 marker). */
    private static final String WEBP_LOSSY = "UklGRmAAAABXRUJQVlA4IFQAAACQBACdASogABgAPikQhkKhoQ36AAwBQlkAHg38A/AD9gP6ByAXYD9gAHn01aAA/vlPP//9uqXvQBif//6B76162QS/3iida9bIG0CRWs6fXGIegAA=";
    private static final String WEBP_LOSSLESS_ALPHA = "UklGRjAAAABXRUJQVlA4TCMAAAAvH8AFEBcQ8y8gKPJ/tPkP+IAg2+aSlRzrASL6PwFV8Gv3AQA=";
    private static final String CMYK_JPEG = "/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwACAQEBAQECAQEBAgICAgIEAwICAgIFBAQDBAYFBgYGBQYGBgcJCAYHCQcGBggLCAkKCgoKCgYICwwLCgwJCgoK/8AAFAgAGAAgBEMRAE0RAFkRAEsRAP/EAB8AAAEFAQEBAQEBAAAAAAAAAAABAgMEBQYHCAkKC//EALUQAAIBAwMCBAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5+v/aAA4EQwBNAFkASwAAPwD9/K/n/r+f+v38oooor+AOiv7/ACiiiiiv7/KK/gDooooor+AOiv7/ACiiiiiv7/KK/gDooooor+AOiv7/ACiiiiiv/9k=";

    private final ImagePreparer jpegOut = new ImagePreparer(ResizeSpec.defaults());
    private final ImagePreparer pngOut = new ImagePreparer(new ResizeSpec(1120, 100_000_000L, "png", 0.9f));

    // ---- formats -------------------------------------------------------------------------------

    @Test
    void jpegIsDecodedAndReencodedAsJpeg() throws Exception {
        byte[] jpeg = encode(quadrants(64, 48, BufferedImage.TYPE_3BYTE_BGR, RED, GREEN, BLUE, WHITE), "jpeg");
        PreparedImage out = jpegOut.prepare(jpeg, "a.jpg");
        assertThat(out.mimeType()).isEqualTo("image/jpeg");
        assertThat(out.bytes()).startsWith((byte) 0xFF, (byte) 0xD8);
        assertThat(new int[] {out.width(), out.height(), out.originalWidth(), out.originalHeight()})
                .containsExactly(64, 48, 64, 48);
        assertQuadrants(decode(out), RED, GREEN, BLUE, WHITE, 24);
        assertThat(out.dataUrl()).startsWith("data:image/jpeg;base64,/9j/");
    }

    @ParameterizedTest
    @ValueSource(strings = {"png", "bmp", "tiff"})
    void losslessFormatsKeepTheirColours(String format) throws Exception {
        byte[] data = encode(quadrants(40, 30, BufferedImage.TYPE_INT_RGB, RED, GREEN, BLUE, WHITE), format);
        PreparedImage out = pngOut.prepare(data, "x." + format);
        assertThat(out.mimeType()).isEqualTo("image/png");
        assertQuadrants(decode(out), RED, GREEN, BLUE, WHITE, 0);
    }

    @Test
    void gifPaletteIsConvertedToRgb() throws Exception {
        byte[] gif = encode(quadrants(40, 30, BufferedImage.TYPE_BYTE_INDEXED, Color.RED, Color.GREEN, Color.BLUE, WHITE), "gif");
        assertThat(new String(gif, 0, 6, StandardCharsets.US_ASCII)).startsWith("GIF8");
        assertQuadrants(decode(pngOut.prepare(gif, "x.gif")), Color.RED, Color.GREEN, Color.BLUE, WHITE, 0);
    }

    @Test
    void palettePngWithTransparentEntryIsFlattenedOnWhite() throws Exception {
        byte[] r = {(byte) 255, 0, 0};
        byte[] g = {0, 0, (byte) 255};
        byte[] b = {0, (byte) 255, 0};
        byte[] a = {(byte) 255, (byte) 255, 0}; // index 2 is fully transparent
        IndexColorModel palette = new IndexColorModel(8, 3, r, g, b, a);
        BufferedImage img = new BufferedImage(20, 10, BufferedImage.TYPE_BYTE_INDEXED, palette);
        WritableRaster raster = img.getRaster();
        for (int y = 0; y < 10; y++) {
            for (int x = 0; x < 20; x++) {
                raster.setSample(x, y, 0, x < 10 ? 0 : 2);
            }
        }
        BufferedImage out = decode(pngOut.prepare(encode(img, "png"), "p.png"));
        assertColor(out.getRGB(5, 5), Color.RED, 0);
        assertColor(out.getRGB(15, 5), WHITE, 0);
    }

    @Test
    void alphaIsFlattenedOnWhite() throws Exception {
        BufferedImage img = new BufferedImage(20, 10, BufferedImage.TYPE_INT_ARGB);
        for (int y = 0; y < 10; y++) {
            for (int x = 0; x < 20; x++) {
                img.setRGB(x, y, x < 10 ? 0xFF0000FF : (x < 15 ? 0x00000000 : 0x80000000));
            }
        }
        BufferedImage out = decode(pngOut.prepare(encode(img, "png"), "a.png"));
        assertColor(out.getRGB(2, 5), Color.BLUE, 0);
        assertColor(out.getRGB(12, 5), WHITE, 0);
        assertColor(out.getRGB(18, 5), new Color(127, 127, 127), 1); // half-transparent black over white
    }

    @Test
    void eightBitGreyKeepsItsValues() throws Exception {
        BufferedImage img = new BufferedImage(16, 4, BufferedImage.TYPE_BYTE_GRAY);
        for (int x = 0; x < 16; x++) {
            for (int y = 0; y < 4; y++) {
                img.getRaster().setSample(x, y, 0, x * 17);
            }
        }
        BufferedImage out = decode(pngOut.prepare(encode(img, "png"), "g.png"));
        for (int x = 0; x < 16; x++) {
            assertColor(out.getRGB(x, 1), new Color(x * 17, x * 17, x * 17), 0);
        }
    }

    @Test
    void sixteenBitGreyKeepsItsValues() throws Exception {
        BufferedImage img = new BufferedImage(16, 4, BufferedImage.TYPE_USHORT_GRAY);
        for (int x = 0; x < 16; x++) {
            for (int y = 0; y < 4; y++) {
                img.getRaster().setSample(x, y, 0, x * 17 * 257);
            }
        }
        byte[] png = encode(img, "png");
        assertThat(png[24]).as("PNG bit depth").isEqualTo((byte) 16);
        BufferedImage out = decode(pngOut.prepare(png, "g16.png"));
        for (int x = 0; x < 16; x++) {
            assertColor(out.getRGB(x, 1), new Color(x * 17, x * 17, x * 17), 0);
        }
    }

    @Test
    void sixteenBitRgbIsReducedToEightBits() throws Exception {
        ComponentColorModel cm = new ComponentColorModel(ColorSpace.getInstance(ColorSpace.CS_sRGB), false, false,
                java.awt.Transparency.OPAQUE, DataBuffer.TYPE_USHORT);
        WritableRaster raster = cm.createCompatibleWritableRaster(10, 10);
        for (int y = 0; y < 10; y++) {
            for (int x = 0; x < 10; x++) {
                raster.setPixel(x, y, new int[] {200 * 257, 100 * 257, 50 * 257});
            }
        }
        byte[] png = encode(new BufferedImage(cm, raster, false, null), "png");
        assertThat(png[24]).as("PNG bit depth").isEqualTo((byte) 16);
        assertColor(decode(pngOut.prepare(png, "rgb16.png")).getRGB(5, 5), new Color(200, 100, 50), 1);
    }

    @Test
    void webpLossyAndLosslessWithAlphaDecode() throws Exception {
        BufferedImage lossy = decode(pngOut.prepare(Base64.getDecoder().decode(WEBP_LOSSY), "w.webp"));
        assertThat(lossy.getWidth()).isEqualTo(32);
        assertThat(lossy.getHeight()).isEqualTo(24);
        assertColor(lossy.getRGB(4, 12), Color.RED, 40);
        assertColor(lossy.getRGB(28, 12), Color.BLUE, 40);

        BufferedImage lossless = decode(pngOut.prepare(Base64.getDecoder().decode(WEBP_LOSSLESS_ALPHA), "w.webp"));
        assertColor(lossless.getRGB(4, 4), Color.RED, 0);
        assertColor(lossless.getRGB(28, 4), Color.BLUE, 0);
        assertColor(lossless.getRGB(4, 20), WHITE, 0);
    }

    @Test
    void cmykJpegIsConvertedToRgb() throws Exception {
        BufferedImage out = decode(pngOut.prepare(Base64.getDecoder().decode(CMYK_JPEG), "cmyk.jpg"));
        Color left = new Color(out.getRGB(4, 12));
        Color right = new Color(out.getRGB(28, 12));
        assertThat(left.getRed()).as("left red").isGreaterThan(180);
        assertThat(Math.max(left.getGreen(), left.getBlue())).as("left green/blue").isLessThan(90);
        assertThat(right.getBlue()).as("right blue").isGreaterThan(120);
        assertThat(Math.max(right.getRed(), right.getGreen())).as("right red/green").isLessThan(90);
    }

    @Test
    void formatComesFromContentNotName() throws Exception {
        byte[] png = encode(quadrants(8, 8, BufferedImage.TYPE_INT_RGB, RED, GREEN, BLUE, WHITE), "png");
        assertThat(jpegOut.prepare(png, "misnamed.jpg").width()).isEqualTo(8);
    }

    // ---- size ----------------------------------------------------------------------------------

    @Test
    void longSideIsBoundedAndAspectKept() throws Exception {
        byte[] jpeg = encode(quadrants(3000, 1500, BufferedImage.TYPE_3BYTE_BGR, RED, GREEN, BLUE, WHITE), "jpeg");
        PreparedImage out = jpegOut.prepare(jpeg, "big.jpg");
        assertThat(new int[] {out.width(), out.height(), out.originalWidth(), out.originalHeight()})
                .containsExactly(1120, 560, 3000, 1500);
        BufferedImage img = decode(out);
        assertThat(img.getWidth()).isEqualTo(1120);
        assertQuadrants(img, RED, GREEN, BLUE, WHITE, 24);
    }

    @Test
    void portraitBoundsTheHeight() throws Exception {
        byte[] png = encode(quadrants(500, 2001, BufferedImage.TYPE_INT_RGB, RED, GREEN, BLUE, WHITE), "png");
        PreparedImage out = new ImagePreparer(new ResizeSpec(448, 100_000_000L, "jpeg", 0.9f)).prepare(png, "tall.png");
        assertThat(out.height()).isEqualTo(448);
        assertThat(out.width()).isEqualTo(112); // 500 * 448 / 2001 = 111.9
    }

    @Test
    void smallImagesAreNotUpscaled() throws Exception {
        byte[] png = encode(quadrants(30, 20, BufferedImage.TYPE_INT_RGB, RED, GREEN, BLUE, WHITE), "png");
        PreparedImage out = jpegOut.prepare(png, "small.png");
        assertThat(out.width()).isEqualTo(30);
        assertThat(out.height()).isEqualTo(20);
    }

    @Test
    void downscaleAveragesFinePatternsInsteadOfAliasing() throws Exception {
        // One-pixel black/white stripes: a good 4x downscale is an even grey, a point-sampling one
        // would be all black or all white.
        BufferedImage stripes = new BufferedImage(1600, 800, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 800; y++) {
            for (int x = 0; x < 1600; x++) {
                stripes.setRGB(x, y, x % 2 == 0 ? 0x000000 : 0xFFFFFF);
            }
        }
        PreparedImage out = new ImagePreparer(new ResizeSpec(400, 100_000_000L, "png", 0.9f))
                .prepare(encode(stripes, "png"), "stripes.png");
        BufferedImage img = decode(out);
        for (int x = 10; x < 390; x += 37) {
            assertColor(img.getRGB(x, 100), new Color(128, 128, 128), 2);
        }
    }

    @Test
    void veryLargeImagesAreSubsampledWhileDecoding() {
        assertThat(Decoder.subsampling(4000, 3000, 1120)).isEqualTo(1);      // 12 Mpx: full decode
        assertThat(Decoder.subsampling(10000, 10000, 1120)).isEqualTo(4);   // 100 Mpx: every 4th pixel
        assertThat(Decoder.subsampling(8000, 4000, 1120)).isEqualTo(3);
    }

    // ---- EXIF orientation ----------------------------------------------------------------------

    /**
     * For each EXIF orientation, the stored image is drawn so that, turned as the tag says, it shows
     * red/green over blue/white, 96x64. Stored quadrants, per the EXIF 2.3 definition of the tag:
     */
    private static final Color[][] STORED = {
            null,
            {RED, GREEN, BLUE, WHITE},   // 1 as stored
            {GREEN, RED, WHITE, BLUE},   // 2 mirrored left-right
            {WHITE, BLUE, GREEN, RED},   // 3 rotated 180
            {BLUE, WHITE, RED, GREEN},   // 4 mirrored top-bottom
            {RED, BLUE, GREEN, WHITE},   // 5 transposed (stored 64x96)
            {GREEN, WHITE, RED, BLUE},   // 6 stored turned 90 counter-clockwise (64x96)
            {WHITE, GREEN, BLUE, RED},   // 7 transversed (64x96)
            {BLUE, RED, WHITE, GREEN},   // 8 stored turned 90 clockwise (64x96)
    };

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4, 5, 6, 7, 8})
    void exifOrientationIsApplied(int orientation) throws Exception {
        boolean swapped = orientation >= 5;
        Color[] q = STORED[orientation];
        BufferedImage stored = quadrants(swapped ? 64 : 96, swapped ? 96 : 64, BufferedImage.TYPE_3BYTE_BGR, q[0], q[1], q[2], q[3]);
        byte[] jpeg = TestImages.withExifOrientation(encode(stored, "jpeg"), orientation);
        PreparedImage out = jpegOut.prepare(jpeg, "o" + orientation + ".jpg");
        assertThat(new int[] {out.width(), out.height(), out.originalWidth(), out.originalHeight()})
                .containsExactly(96, 64, 96, 64);
        assertQuadrants(decode(out), RED, GREEN, BLUE, WHITE, 24);
    }

    @Test
    void orientationAppliesAfterDownscaling() throws Exception {
        Color[] q = STORED[6];
        BufferedImage stored = quadrants(1000, 3000, BufferedImage.TYPE_3BYTE_BGR, q[0], q[1], q[2], q[3]);
        PreparedImage out = jpegOut.prepare(TestImages.withExifOrientation(encode(stored, "jpeg"), 6), "r.jpg");
        assertThat(new int[] {out.width(), out.height(), out.originalWidth(), out.originalHeight()})
                .containsExactly(1120, 373, 3000, 1000);
        assertQuadrants(decode(out), RED, GREEN, BLUE, WHITE, 24);
    }

    // ---- rejections ----------------------------------------------------------------------------

    @Test
    void zeroByteFileIsRejected() {
        assertRejected(TestImages.zeroBytes(), "empty file (0 bytes)");
    }

    @Test
    void truncatedJpegIsRejected() {
        assertThatThrownBy(() -> jpegOut.prepare(TestImages.truncatedJpeg(), "cut.jpg"))
                .isInstanceOf(ImageRejectedException.class)
                .hasMessageStartingWith("truncated or corrupt JPEG: ");
    }

    @Test
    void jpegCutInsideItsHeaderIsRejected() {
        byte[] jpeg = encode(TestImages.noise(64, 64, 1), "jpeg");
        assertThatThrownBy(() -> jpegOut.prepare(Arrays.copyOf(jpeg, 40), "cut.jpg"))
                .isInstanceOf(ImageRejectedException.class)
                .hasMessageStartingWith("truncated or corrupt JPEG: ");
    }

    @Test
    void truncatedPngIsRejected() {
        byte[] png = encode(TestImages.noise(128, 128, 2), "png");
        assertThatThrownBy(() -> jpegOut.prepare(Arrays.copyOf(png, png.length / 2), "cut.png"))
                .isInstanceOf(ImageRejectedException.class)
                .hasMessageStartingWith("corrupt PNG: ");
    }

    @Test
    void textNamedJpgIsRejected() {
        assertRejected(TestImages.textFile(), "not an image (unrecognised format; the content looks like text)");
    }

    @Test
    void binaryGarbageIsRejected() {
        byte[] garbage = new byte[1000];
        new java.util.Random(3).nextBytes(garbage);
        garbage[0] = 0x00; // make sure it cannot start like a known format
        assertRejected(garbage, "not an image (unrecognised format)");
    }

    @Test
    void knownButUnsupportedFormatsAreNamed() {
        byte[] heic = new byte[64];
        System.arraycopy(new byte[] {0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'h', 'e', 'i', 'c'}, 0, heic, 0, 12);
        assertRejected(heic, "unsupported image format: HEIC/HEIF");
        assertRejected("<svg xmlns=\"http://www.w3.org/2000/svg\"/>".getBytes(StandardCharsets.UTF_8),
                "unsupported image format: SVG");
        assertRejected("%PDF-1.7\n".getBytes(StandardCharsets.US_ASCII), "unsupported format: PDF");
    }

    @Test
    void decompressionBombIsRejectedFromItsHeader() {
        byte[] bomb = TestImages.bombPng(30000);
        assertThat(bomb.length).as("compressed size").isLessThan(1_000_000);
        assertRejected(bomb, "image too large: 30000x30000 = 900 Mpx exceeds the 100 Mpx limit");
    }

    @Test
    void pixelLimitIsConfigurable() throws Exception {
        byte[] png = encode(quadrants(200, 100, BufferedImage.TYPE_INT_RGB, RED, GREEN, BLUE, WHITE), "png");
        ImagePreparer strict = new ImagePreparer(new ResizeSpec(1120, 19_999, "jpeg", 0.9f));
        assertThatThrownBy(() -> strict.prepare(png, "x.png"))
                .hasMessage("image too large: 200x100 = 20000 px exceeds the 19999 px limit");
        assertThat(new ImagePreparer(new ResizeSpec(1120, 20_000, "jpeg", 0.9f)).prepare(png, "x.png").width())
                .isEqualTo(200);
    }

    @Test
    void resizeSpecRejectsNonsense() {
        assertThatThrownBy(() -> new ResizeSpec(0, 1, "jpeg", 0.9f)).hasMessageContaining("maxSide");
        assertThatThrownBy(() -> new ResizeSpec(10, 1, "gif", 0.9f)).hasMessageContaining("jpeg or png");
        assertThatThrownBy(() -> new ResizeSpec(10, 1, "jpeg", 0f)).hasMessageContaining("quality");
    }

    // ---- helpers -------------------------------------------------------------------------------

    private void assertRejected(byte[] data, String reason) {
        assertThatThrownBy(() -> jpegOut.prepare(data, "input"))
                .isInstanceOf(ImageRejectedException.class)
                .hasMessage(reason);
    }

    private static BufferedImage decode(PreparedImage out) {
        try {
            BufferedImage img = ImageIO.read(new ByteArrayInputStream(out.bytes()));
            assertThat(img).isNotNull();
            assertThat(img.getWidth()).isEqualTo(out.width());
            assertThat(img.getHeight()).isEqualTo(out.height());
            return img;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Samples the centre of each quadrant. */
    private static void assertQuadrants(BufferedImage img, Color tl, Color tr, Color bl, Color br, int tolerance) {
        int w = img.getWidth();
        int h = img.getHeight();
        assertColor(img.getRGB(w / 4, h / 4), tl, tolerance);
        assertColor(img.getRGB(3 * w / 4, h / 4), tr, tolerance);
        assertColor(img.getRGB(w / 4, 3 * h / 4), bl, tolerance);
        assertColor(img.getRGB(3 * w / 4, 3 * h / 4), br, tolerance);
    }

    private static void assertColor(int rgb, Color expected, int tolerance) {
        Color actual = new Color(rgb);
        assertThat(new int[] {actual.getRed(), actual.getGreen(), actual.getBlue()})
                .as("colour %s, expected %s", actual, expected)
                .satisfies(c -> {
                    assertThat(Math.abs(c[0] - expected.getRed())).isLessThanOrEqualTo(tolerance);
                    assertThat(Math.abs(c[1] - expected.getGreen())).isLessThanOrEqualTo(tolerance);
                    assertThat(Math.abs(c[2] - expected.getBlue())).isLessThanOrEqualTo(tolerance);
                });
    }
}
