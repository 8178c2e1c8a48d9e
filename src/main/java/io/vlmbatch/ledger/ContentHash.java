package io.vlmbatch.ledger;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The identity of an item's bytes in the ledger: SHA-256 of the file as fetched, so a renamed or
 * re-uploaded copy is recognised and a file changed in place is not. A page of a document is the
 * document's bytes plus the page number: the page number is what tells page 2 from page 3 of one file.
 */
public final class ContentHash {
    private ContentHash() {}

    /** SHA-256 of a whole file, as 64 lower-case hex digits. */
    public static String of(byte[] bytes) {
        MessageDigest d = sha256();
        d.update(bytes);
        return HexFormat.of().formatHex(d.digest());
    }

    /**
     * One page (1-based) or frame of a document whose bytes {@code source} streams (the caller closes it).
     * The byte count and page number follow the bytes, so a page's hash never equals the hash of a file
     * (see {@link #of}) nor of another page.
     */
    public static String ofPage(InputStream source, int page) throws IOException {
        if (page < 1) throw new IllegalArgumentException("page numbers start at 1, got " + page);
        MessageDigest d = sha256();
        byte[] buf = new byte[64 * 1024];
        long length = 0;
        for (int n; (n = source.read(buf)) > 0; ) {
            d.update(buf, 0, n);
            length += n;
        }
        // length-prefixed so that no choice of bytes can pose as another (bytes, page) pair
        d.update(("\u0000page:" + length + ":" + page).getBytes(StandardCharsets.US_ASCII));
        return HexFormat.of().formatHex(d.digest());
    }

    /**
     * A page or member inside a listed file, by that file's hash ({@link #of} or {@link #ofStream}), the
     * member path ("" or null: the file itself) and the 1-based page (null: a whole image). Hashing the
     * document once and the page number on top keeps a 500-page PDF from being read 500 times.
     */
    public static String ofPart(String documentHash, String member, Integer page) {
        MessageDigest d = sha256();
        String m = member == null ? "" : member;
        d.update(("part\u0000" + documentHash + "\u0000" + m.length() + ":" + m + "\u0000" + (page == null ? "-" : page))
                .getBytes(StandardCharsets.UTF_8));
        return HexFormat.of().formatHex(d.digest());
    }

    /** SHA-256 of everything the stream holds (the caller closes it); equal to {@link #of} of the same bytes. */
    public static String ofStream(InputStream in) throws IOException {
        MessageDigest d = sha256();
        byte[] buf = new byte[64 * 1024];
        for (int n; (n = in.read(buf)) > 0; ) d.update(buf, 0, n);
        return HexFormat.of().formatHex(d.digest());
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java runtime has SHA-256", e);
        }
    }
}
