package io.vlmbatch.archive;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.Set;

import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;

/**
 * What a file is, for expansion: recognised from its leading bytes (a name says nothing reliable),
 * except that a member named like a common image is taken as an image without being opened, which
 * keeps listing a ZIP of 100,000 photos to one read of its directory.
 */
public enum Format {
    PDF, TIFF, ZIP, TAR, TAR_GZ, IMAGE, UNKNOWN;

    static final int HEAD = 1024;

    private static final Set<String> IMAGE_EXTENSIONS =
            Set.of("jpg", "jpeg", "jpe", "png", "gif", "bmp", "webp");

    /** The container type a job's {@code expand} list names for this format, or null for non-containers. */
    public Container container() {
        return switch (this) {
            case PDF -> Container.PDF;
            case TIFF -> Container.TIFF;
            case ZIP -> Container.ZIP;
            case TAR, TAR_GZ -> Container.TAR;
            default -> null;
        };
    }

    /** True when the name alone marks a common image (the processor still checks the content). */
    static boolean imageByName(String name) {
        return IMAGE_EXTENSIONS.contains(extension(name));
    }

    /** Recognises the format from the source's first bytes (and, for gzip, the first inflated block). */
    static Format detect(ByteSource source) throws IOException {
        byte[] head = source.head(HEAD);
        Format format = sniff(head, source.name());
        if (format == TAR_GZ) {
            try (InputStream in = new GzipCompressorInputStream(source.openAt(0))) {
                byte[] inner = in.readNBytes(512);
                return isTar(inner, source.name()) ? TAR_GZ : UNKNOWN;
            } catch (IOException e) {
                return UNKNOWN; // not gzip after all, or cut short: nothing we can expand
            }
        }
        return format;
    }

    /** From leading bytes; a gzip stream is reported as TAR_GZ, to be confirmed by {@link #detect}. */
    static Format sniff(byte[] d, String name) {
        if (indexOf(d, "%PDF-".getBytes(StandardCharsets.US_ASCII)) >= 0) {
            return PDF; // the header may follow some junk within the first 1024 bytes
        }
        if (startsWith(d, 'I', 'I', 42, 0) || startsWith(d, 'M', 'M', 0, 42)
                || startsWith(d, 'I', 'I', 43, 0) || startsWith(d, 'M', 'M', 0, 43)) {
            return TIFF;
        }
        if (startsWith(d, 'P', 'K', 3, 4) || startsWith(d, 'P', 'K', 5, 6) || startsWith(d, 'P', 'K', 7, 8)) {
            return ZIP;
        }
        if (startsWith(d, 0x1F, 0x8B)) {
            return TAR_GZ;
        }
        if (isTar(d, name)) {
            return TAR;
        }
        if (startsWith(d, 0xFF, 0xD8, 0xFF) || startsWith(d, 0x89, 'P', 'N', 'G')
                || startsWith(d, 'G', 'I', 'F', '8') || startsWith(d, 'B', 'M')
                || (startsWith(d, 'R', 'I', 'F', 'F') && d.length >= 12 && d[8] == 'W' && d[9] == 'E' && d[10] == 'B' && d[11] == 'P')) {
            return IMAGE;
        }
        return UNKNOWN;
    }

    /** POSIX/GNU magic at offset 257; a pre-POSIX (v7) archive only by its name and header checksum. */
    private static boolean isTar(byte[] d, String name) {
        if (d.length >= 262 && d[257] == 'u' && d[258] == 's' && d[259] == 't' && d[260] == 'a' && d[261] == 'r') {
            return true;
        }
        return d.length >= 512 && extension(name).equals("tar") && v7ChecksumOk(d);
    }

    private static boolean v7ChecksumOk(byte[] d) {
        long sum = 0;
        for (int i = 0; i < 512; i++) {
            sum += (i >= 148 && i < 156) ? ' ' : (d[i] & 0xFF);
        }
        String field = new String(d, 148, 8, StandardCharsets.US_ASCII).replace('\0', ' ').strip();
        try {
            return !field.isEmpty() && Long.parseLong(field, 8) == sum;
        } catch (NumberFormatException e) {
            return false;
        }
    }

    static String extension(String name) {
        String base = name.substring(name.lastIndexOf('/') + 1);
        int dot = base.lastIndexOf('.');
        return dot < 0 ? "" : base.substring(dot + 1).toLowerCase(Locale.ROOT);
    }

    private static boolean startsWith(byte[] d, int... magic) {
        if (d.length < magic.length) {
            return false;
        }
        for (int i = 0; i < magic.length; i++) {
            if ((d[i] & 0xFF) != (magic[i] & 0xFF)) {
                return false;
            }
        }
        return true;
    }

    private static int indexOf(byte[] d, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= d.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (d[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
