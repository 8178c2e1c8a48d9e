package io.vlmbatch.archive;

import java.io.IOException;
import java.io.InputStream;

import org.apache.commons.compress.archivers.ArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;

/**
 * A TAR or TAR.GZ, read front to back (a TAR has no directory). A member is read by walking the
 * headers to it again; in a plain TAR the data of earlier members is skipped, in a TAR.GZ it has to be
 * inflated on the way. Members cut off by the end of a truncated archive are not listed.
 */
final class TarArchive extends SequentialArchive<TarArchiveEntry> {

    private final boolean gzip;
    private long packed = -1; // the archive's size, read once for the TAR.GZ ratio guard

    TarArchive(ByteSource source, boolean gzip, ExpandSpec spec) {
        super(source, spec);
        this.gzip = gzip;
    }

    @Override
    protected ArchiveInputStream<TarArchiveEntry> stream() throws IOException {
        InputStream in = source.openAt(0);
        try {
            if (gzip) {
                in = GzipCompressorInputStream.builder().setInputStream(in).setDecompressConcatenated(true).get();
            }
            return new TarArchiveInputStream(in, "UTF-8");
        } catch (IOException | RuntimeException e) {
            in.close();
            throw e;
        }
    }

    @Override
    protected String kind() {
        return gzip ? "TAR.GZ" : "TAR";
    }

    @Override
    protected boolean hasData(TarArchiveEntry e) {
        return e.isFile() && !e.isSparse();
    }

    /** A TAR header records the member's size: the guards are checked before its data is read past. */
    @Override
    protected long readRest(ArchiveInputStream<TarArchiveEntry> in, TarArchiveEntry e, int headLength, long total) throws IOException {
        long size = e.getSize();
        long after = total + size;
        if (after > spec.maxTotalBytes()) {
            throw new ArchiveRejectedException(kind() + " bomb guard: members add up to more than "
                    + spec.maxTotalBytes() + " bytes");
        }
        if (gzip && packed < 0) packed = source.size();
        if (gzip && after > spec.ratioFloorBytes() && after > spec.maxRatio() * Math.max(1, packed)) {
            throw new ArchiveRejectedException(String.format(java.util.Locale.ROOT,
                    "TAR.GZ bomb guard: %d compressed bytes inflate to more than %d (limit %.0fx)",
                    packed, after, spec.maxRatio()));
        }
        in.skipNBytes(size - headLength);
        return size;
    }

    @Override
    protected long sizeOf(ArchiveInputStream<TarArchiveEntry> in, TarArchiveEntry e) {
        return e.getSize();
    }
}
