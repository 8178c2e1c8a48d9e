package io.vlmbatch.testsupport;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.GZIPOutputStream;

import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;

import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.zip.ZipArchiveEntry;
import org.apache.commons.compress.archivers.zip.ZipArchiveOutputStream;
import org.apache.pdfbox.pdmodel.PDDocument;
import org.apache.pdfbox.pdmodel.PDPage;
import org.apache.pdfbox.pdmodel.PDPageContentStream;
import org.apache.pdfbox.pdmodel.common.PDRectangle;
import org.apache.pdfbox.pdmodel.encryption.AccessPermission;
import org.apache.pdfbox.pdmodel.encryption.StandardProtectionPolicy;
import org.apache.pdfbox.pdmodel.font.PDType1Font;
import org.apache.pdfbox.pdmodel.font.Standard14Fonts;
import org.apache.pdfbox.pdmodel.graphics.image.JPEGFactory;
import org.apache.pdfbox.pdmodel.graphics.image.PDImageXObject;

/**
 * Real documents and archives made in code: text and scanned PDFs, multi-page TIFFs, ZIP, TAR and
 * TAR.GZ (nested too), and the hostile ones (encrypted PDF, cut archives, bombs, too many pages).
 */
public final class ArchiveFiles {

    private ArchiveFiles() {}

    /** An A4 PDF whose page n (1-based) reads "page n" in large type, plus a line of text. */
    public static byte[] textPdf(int pages, String title) throws IOException {
        try (PDDocument doc = new PDDocument()) {
            PDType1Font font = new PDType1Font(Standard14Fonts.FontName.HELVETICA_BOLD);
            for (int p = 1; p <= pages; p++) {
                PDPage page = new PDPage(PDRectangle.A4);
                doc.addPage(page);
                try (PDPageContentStream cs = new PDPageContentStream(doc, page)) {
                    cs.beginText();
                    cs.setFont(font, 48);
                    cs.newLineAtOffset(72, 700);
                    cs.showText("page " + p);
                    cs.setFont(font, 14);
                    cs.newLineAtOffset(0, -40);
                    cs.showText(title);
                    cs.endText();
                }
            }
            return save(doc);
        }
    }

    /** An image-only PDF, as a scanner makes: each page is one JPEG covering it, page n in colour n. */
    public static byte[] scannedPdf(Color... pageColors) throws IOException {
        try (PDDocument doc = new PDDocument()) {
            for (Color color : pageColors) {
                PDPage page = new PDPage(PDRectangle.LETTER);
                doc.addPage(page);
                BufferedImage scan = scan(1275, 1650, color);
                PDImageXObject image = JPEGFactory.createFromImage(doc, scan, 0.85f);
                try (PDPageContentStream cs = new PDPageContentStream(doc, page)) {
                    cs.drawImage(image, 0, 0, page.getMediaBox().getWidth(), page.getMediaBox().getHeight());
                }
            }
            return save(doc);
        }
    }

    /**
     * A 3-page PDF whose page 2 draws a JPEG image whose data is garbage: that page cannot render,
     * pages 1 and 3 can.
     */
    public static byte[] pdfWithCorruptPage() throws IOException {
        try (PDDocument doc = new PDDocument()) {
            for (int p = 1; p <= 3; p++) {
                PDPage page = new PDPage(PDRectangle.A4);
                doc.addPage(page);
                PDImageXObject image;
                if (p == 2) {
                    byte[] garbage = new byte[4096];
                    new java.util.Random(2).nextBytes(garbage);
                    image = new PDImageXObject(doc, new java.io.ByteArrayInputStream(garbage),
                            org.apache.pdfbox.cos.COSName.DCT_DECODE, 600, 800, 8,
                            org.apache.pdfbox.pdmodel.graphics.color.PDDeviceRGB.INSTANCE);
                } else {
                    image = JPEGFactory.createFromImage(doc, scan(600, 800, Color.RED), 0.85f);
                }
                try (PDPageContentStream cs = new PDPageContentStream(doc, page)) {
                    cs.drawImage(image, 0, 0, 595, 842);
                }
            }
            return save(doc);
        }
    }

    /** A PDF with blank pages only: many pages for few bytes. */
    public static byte[] blankPdf(int pages) throws IOException {
        try (PDDocument doc = new PDDocument()) {
            for (int p = 0; p < pages; p++) {
                doc.addPage(new PDPage(PDRectangle.A4));
            }
            return save(doc);
        }
    }

    /** A PDF that opens only with the password (AES-256). */
    public static byte[] encryptedPdf(String userPassword) throws IOException {
        try (PDDocument doc = org.apache.pdfbox.Loader.loadPDF(textPdf(2, "secret"))) {
            StandardProtectionPolicy policy = new StandardProtectionPolicy("owner-" + userPassword, userPassword,
                    new AccessPermission());
            policy.setEncryptionKeyLength(256);
            doc.protect(policy);
            return save(doc);
        }
    }

    /** A page-sized picture: paper white with a coloured block and dark "text" lines. */
    public static BufferedImage scan(int width, int height, Color color) {
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(new Color(245, 243, 238));
        g.fillRect(0, 0, width, height);
        g.setColor(color);
        g.fillRect(width / 8, height / 8, width * 3 / 4, height / 4);
        g.setColor(new Color(30, 30, 30));
        for (int y = height / 2; y < height * 7 / 8; y += Math.max(4, height / 40)) {
            g.fillRect(width / 8, y, width * 3 / 4, Math.max(2, height / 200));
        }
        g.dispose();
        return img;
    }

    /** A multi-page TIFF (RGB, LZW), frame n filled mostly with colour n. */
    public static byte[] multiPageTiff(int width, int height, Color... frameColors) throws IOException {
        return multiPageTiff(width, height, BufferedImage.TYPE_INT_RGB, "LZW", frameColors);
    }

    /**
     * A multi-page TIFF of the given pixel type (TYPE_BYTE_BINARY for bilevel, TYPE_BYTE_GRAY...) and
     * compression ("LZW", "CCITT T.6" for bilevel, "Deflate", "None").
     */
    public static byte[] multiPageTiff(int width, int height, int imageType, String compression, Color... frameColors)
            throws IOException {
        ImageWriter writer = ImageIO.getImageWritersByFormatName("tiff").next();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ImageOutputStream out = ImageIO.createImageOutputStream(bytes)) {
            writer.setOutput(out);
            ImageWriteParam param = writer.getDefaultWriteParam();
            param.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
            param.setCompressionType(compression);
            writer.prepareWriteSequence(null);
            for (Color c : frameColors) {
                BufferedImage frame = scan(width, height, c);
                if (imageType != BufferedImage.TYPE_INT_RGB) {
                    BufferedImage converted = new BufferedImage(width, height, imageType);
                    Graphics2D g = converted.createGraphics();
                    g.drawImage(frame, 0, 0, null);
                    g.dispose();
                    frame = converted;
                }
                writer.writeToSequence(new IIOImage(frame, null, null), param);
            }
            writer.endWriteSequence();
        } finally {
            writer.dispose();
        }
        return bytes.toByteArray();
    }

    /** A ZIP with the members in order; a name ending in "/" is a folder entry. */
    public static byte[] zip(Map<String, byte[]> members) throws IOException {
        return zip(members, false);
    }

    /** @param stored members kept uncompressed (STORED) rather than deflated */
    public static byte[] zip(Map<String, byte[]> members, boolean stored) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ZipArchiveOutputStream zip = new ZipArchiveOutputStream(bytes)) {
            for (Map.Entry<String, byte[]> m : members.entrySet()) {
                ZipArchiveEntry entry = new ZipArchiveEntry(m.getKey());
                if (stored) {
                    entry.setMethod(ZipArchiveEntry.STORED);
                    entry.setSize(m.getValue().length);
                    java.util.zip.CRC32 crc = new java.util.zip.CRC32();
                    crc.update(m.getValue());
                    entry.setCrc(crc.getValue());
                }
                zip.putArchiveEntry(entry);
                zip.write(m.getValue());
                zip.closeArchiveEntry();
            }
        }
        return bytes.toByteArray();
    }

    /** A POSIX TAR with the members in order (long names allowed). */
    public static byte[] tar(Map<String, byte[]> members) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        writeTar(members, bytes);
        return bytes.toByteArray();
    }

    public static byte[] tarGz(Map<String, byte[]> members) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(bytes)) {
            writeTar(members, gz);
        }
        return bytes.toByteArray();
    }

    private static void writeTar(Map<String, byte[]> members, OutputStream out) throws IOException {
        TarArchiveOutputStream tar = new TarArchiveOutputStream(out, "UTF-8");
        tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        for (Map.Entry<String, byte[]> m : members.entrySet()) {
            TarArchiveEntry entry = new TarArchiveEntry(m.getKey(), true);
            entry.setSize(m.getValue().length);
            tar.putArchiveEntry(entry);
            tar.write(m.getValue());
            tar.closeArchiveEntry();
        }
        tar.finish();
        tar.flush();
    }

    /** Ordered member map: {@code members("a.jpg", bytes, "b.pdf", bytes)}. */
    public static Map<String, byte[]> members(Object... nameThenBytes) {
        Map<String, byte[]> m = new LinkedHashMap<>();
        for (int i = 0; i < nameThenBytes.length; i += 2) {
            m.put((String) nameThenBytes[i], (byte[]) nameThenBytes[i + 1]);
        }
        return m;
    }

    public static Path write(Path file, byte[] bytes) throws IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
        return Files.write(file, bytes);
    }

    private static byte[] save(PDDocument doc) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        doc.save(out);
        return out.toByteArray();
    }
}
