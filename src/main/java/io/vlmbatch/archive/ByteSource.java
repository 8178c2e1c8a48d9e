package io.vlmbatch.archive;

import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.SeekableByteChannel;

/**
 * A file that can be read again from any offset: a local file, an S3 object, or a member of a
 * container. Nothing here holds the content; every open reads from the origin.
 */
public interface ByteSource {

    /** Where the bytes come from, for messages (a URI, or a URI plus the member path). */
    String name();

    /** Length in bytes. */
    long size() throws IOException;

    /** A stream of the bytes from {@code offset} to the end; the caller closes it. */
    InputStream openAt(long offset) throws IOException;

    /**
     * Random access for formats that need it (PDF, TIFF, a ZIP's central directory). The default
     * serves it from {@link #openAt} through a small block cache, so memory stays bounded whatever
     * the size; a local file overrides it with the file itself.
     */
    default SeekableByteChannel openChannel() throws IOException {
        return new BlockCachedChannel(this);
    }

    /** The first {@code n} bytes (fewer when the source is shorter): enough to recognise a format. */
    default byte[] head(int n) throws IOException {
        try (InputStream in = openAt(0)) {
            return in.readNBytes(n);
        }
    }
}
