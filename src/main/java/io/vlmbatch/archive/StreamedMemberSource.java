package io.vlmbatch.archive;

import java.io.IOException;
import java.io.InputStream;

/**
 * A member that can only be read from its start (compressed in a ZIP, inside a TAR.GZ): each open
 * streams it again and skips to the offset. Reads stop at the declared size, so a member that
 * inflates to more than its directory says never yields more.
 */
final class StreamedMemberSource implements ByteSource {

    /** Opens the member's bytes from its first byte. */
    @FunctionalInterface
    interface Opener {
        InputStream open() throws IOException;
    }

    private final String name;
    private final long size;
    private final Opener opener;

    StreamedMemberSource(String name, long size, Opener opener) {
        this.name = name;
        this.size = size;
        this.opener = opener;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public InputStream openAt(long offset) throws IOException {
        InputStream in = new CappedInputStream(opener.open(), size, false, name);
        try {
            in.skipNBytes(Math.min(offset, size));
        } catch (IOException | RuntimeException e) {
            in.close();
            throw e;
        }
        return in;
    }
}
