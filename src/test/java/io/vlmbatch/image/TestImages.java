package io.vlmbatch.image;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import java.util.zip.CRC32;
import java.util.zip.Deflater;
import java.util.zip.DeflaterOutputStream;

import javax.imageio.ImageIO;

/**
 * Images made in code for tests, including the bad inputs the pipeline must reject (also usable by
 * the pipeline's end-to-end tests): empty, truncated JPEG, text named .jpg, a decompression bomb.
 */
public final class TestImages {

    private TestImages() {}

    /** Four solid quadrants: top-left, top-right, bottom-left, bottom-right. */
    public static BufferedImage quadrants(int w, int h, int type, Color tl, Color tr, Color bl, Color br) {
        BufferedImage img = new BufferedImage(w, h, type);
        Graphics2D g = img.createGraphics();
        g.setColor(tl);
        g.fillRect(0, 0, w / 2, h / 2);
        g.setColor(tr);
        g.fillRect(w / 2, 0, w - w / 2, h / 2);
        g.setColor(bl);
        g.fillRect(0, h / 2, w / 2, h - h / 2);
        g.setColor(br);
        g.fillRect(w / 2, h / 2, w - w / 2, h - h / 2);
        g.dispose();
        return img;
    }

    /** Seeded noise: compresses badly, so a cut JPEG surely loses scan data. */
    public static BufferedImage noise(int w, int h, long seed) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Random random = new Random(seed);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                img.setRGB(x, y, random.nextInt(0x1000000));
            }
        }
        return img;
    }

    public static byte[] encode(BufferedImage img, String format) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            if (!ImageIO.write(img, format, out)) {
                throw new IllegalStateException("no ImageIO writer for " + format + " and image type " + img.getType());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    public static byte[] zeroBytes() {
        return new byte[0];
    }

    /** A real JPEG with its second half cut off. */
    public static byte[] truncatedJpeg() {
        byte[] jpeg = encode(noise(256, 256, 7), "jpeg");
        return Arrays.copyOf(jpeg, jpeg.length / 2);
    }

    public static byte[] textFile() {
        return "This is a plain text file that someone saved as photo.jpg.\nIt has no pixels.\n"
                .getBytes(StandardCharsets.UTF_8);
    }

    /**
     * A valid PNG of {@code side x side} 1-bit grey pixels, all black. Its IDAT inflates to side^2/8
     * bytes (112 MB at 30000) but deflates to about 100 KB: a decompression bomb made in milliseconds.
     */
    public static byte[] bombPng(int side) {
        try {
            ByteArrayOutputStream png = new ByteArrayOutputStream();
            png.write(new byte[] {(byte) 0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A});
            ByteArrayOutputStream ihdr = new ByteArrayOutputStream();
            DataOutputStream d = new DataOutputStream(ihdr);
            d.writeInt(side);
            d.writeInt(side);
            d.writeByte(1); // bit depth
            d.writeByte(0); // greyscale
            d.writeByte(0); // deflate
            d.writeByte(0); // adaptive filtering
            d.writeByte(0); // no interlace
            chunk(png, "IHDR", ihdr.toByteArray());
            ByteArrayOutputStream idat = new ByteArrayOutputStream();
            byte[] row = new byte[1 + (side + 7) / 8]; // filter byte 0, then zero pixels
            try (DeflaterOutputStream z = new DeflaterOutputStream(idat, new Deflater(Deflater.BEST_COMPRESSION))) {
                for (int y = 0; y < side; y++) {
                    z.write(row);
                }
            }
            chunk(png, "IDAT", idat.toByteArray());
            chunk(png, "IEND", new byte[0]);
            return png.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void chunk(ByteArrayOutputStream png, String type, byte[] data) throws IOException {
        DataOutputStream out = new DataOutputStream(png);
        byte[] typeBytes = type.getBytes(StandardCharsets.US_ASCII);
        out.writeInt(data.length);
        out.write(typeBytes);
        out.write(data);
        CRC32 crc = new CRC32();
        crc.update(typeBytes);
        crc.update(data);
        out.writeInt((int) crc.getValue());
    }

    /**
     * The JPEG with an APP1 Exif segment holding only IFD0/Orientation, inserted after SOI and the
     * JFIF APP0 segment if there is one (little-endian TIFF header, one SHORT entry).
     */
    public static byte[] withExifOrientation(byte[] jpeg, int orientation) {
        ByteArrayOutputStream tiff = new ByteArrayOutputStream();
        byte[] header = {'I', 'I', 42, 0, 8, 0, 0, 0};
        tiff.writeBytes(header);
        tiff.writeBytes(le16(1));            // one IFD entry
        tiff.writeBytes(le16(0x0112));       // Orientation
        tiff.writeBytes(le16(3));            // SHORT
        tiff.writeBytes(le32(1));            // count
        tiff.writeBytes(le16(orientation));  // value, left-justified in the 4-byte field
        tiff.writeBytes(le16(0));
        tiff.writeBytes(le32(0));            // no next IFD
        byte[] payload = tiff.toByteArray();
        ByteArrayOutputStream app1 = new ByteArrayOutputStream();
        app1.writeBytes(new byte[] {(byte) 0xFF, (byte) 0xE1});
        int length = 2 + 6 + payload.length;
        app1.write(length >> 8);
        app1.write(length & 0xFF);
        app1.writeBytes("Exif\0\0".getBytes(StandardCharsets.ISO_8859_1));
        app1.writeBytes(payload);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int at = 2; // after SOI
        if ((jpeg[2] & 0xFF) == 0xFF && (jpeg[3] & 0xFF) == 0xE0) {
            at += 2 + (((jpeg[4] & 0xFF) << 8) | (jpeg[5] & 0xFF));
        }
        out.write(jpeg, 0, at);
        out.writeBytes(app1.toByteArray());
        out.write(jpeg, at, jpeg.length - at);
        return out.toByteArray();
    }

    private static byte[] le16(int v) {
        return new byte[] {(byte) v, (byte) (v >> 8)};
    }

    private static byte[] le32(int v) {
        return new byte[] {(byte) v, (byte) (v >> 8), (byte) (v >> 16), (byte) (v >> 24)};
    }
}
