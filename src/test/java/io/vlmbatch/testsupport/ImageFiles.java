package io.vlmbatch.testsupport;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.CRC32;
import java.util.zip.Deflater;
import javax.imageio.ImageIO;

/** Images (and non-images) written by tests: nothing binary is checked in for these cases. */
public final class ImageFiles {
    private ImageFiles() {}

    public static byte[] jpeg(int width, int height, int seed) throws IOException {
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        java.util.Random r = new java.util.Random(seed);
        for (int i = 0; i < 12; i++) {
            g.setColor(new Color(r.nextInt(256), r.nextInt(256), r.nextInt(256)));
            g.fillRect(r.nextInt(width), r.nextInt(height), 1 + r.nextInt(width / 2 + 1), 1 + r.nextInt(height / 2 + 1));
        }
        g.setColor(Color.BLACK);
        g.drawString("image " + seed, 10, 20);
        g.dispose();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(img, "jpg", out);
        return out.toByteArray();
    }

    public static void writeJpegs(Path dir, int count, int width, int height) throws IOException {
        Files.createDirectories(dir);
        for (int i = 0; i < count; i++) {
            Files.write(dir.resolve(String.format("img%04d.jpg", i)), jpeg(width, height, i));
        }
    }

    /** The first half of a real JPEG: a header that parses, then data that stops. */
    public static byte[] truncatedJpeg() throws IOException {
        byte[] full = jpeg(400, 300, 7);
        return Arrays.copyOf(full, full.length / 2);
    }

    public static byte[] textNamedJpeg() {
        return "this is a text file, not a picture\n".getBytes(StandardCharsets.UTF_8);
    }

    /**
     * A valid PNG whose header says 30000x30000 (900 Mpx) with a short, well-formed compressed stream:
     * the decompression-bomb case, which must be refused from the header before any decoding.
     */
    public static byte[] hugePng(int width, int height) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
        ByteArrayOutputStream ihdr = new ByteArrayOutputStream();
        DataOutputStream d = new DataOutputStream(ihdr);
        d.writeInt(width);
        d.writeInt(height);
        d.writeByte(8);   // bit depth
        d.writeByte(2);   // RGB
        d.writeByte(0);
        d.writeByte(0);
        d.writeByte(0);
        chunk(out, "IHDR", ihdr.toByteArray());
        // A few rows of zeros, compressed: the file is small, the image it claims is not.
        byte[] rows = new byte[(width * 3 + 1) * 4];
        Deflater deflater = new Deflater(9);
        deflater.setInput(rows);
        deflater.finish();
        byte[] buf = new byte[rows.length];
        int n = deflater.deflate(buf);
        chunk(out, "IDAT", Arrays.copyOf(buf, n));
        chunk(out, "IEND", new byte[0]);
        return out.toByteArray();
    }

    private static void chunk(ByteArrayOutputStream out, String type, byte[] data) throws IOException {
        DataOutputStream d = new DataOutputStream(out);
        d.writeInt(data.length);
        byte[] t = type.getBytes(StandardCharsets.US_ASCII);
        d.write(t);
        d.write(data);
        CRC32 crc = new CRC32();
        crc.update(t);
        crc.update(data);
        d.writeInt((int) crc.getValue());
    }
}
