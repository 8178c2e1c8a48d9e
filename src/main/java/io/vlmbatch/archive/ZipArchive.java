package io.vlmbatch.archive;

import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.SeekableByteChannel;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.apache.commons.compress.archivers.ArchiveInputStream;
import org.apache.commons.compress.archivers.zip.ZipArchiveEntry;
import org.apache.commons.compress.archivers.zip.ZipArchiveInputStream;
import org.apache.commons.compress.archivers.zip.ZipFile;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A ZIP read through its central directory (random access on the source, members streamed one at a
 * time). A ZIP whose directory cannot be read (cut short, damaged) is read front to back from its
 * local headers instead, so the members before the damage are still listed and readable.
 */
final class ZipArchive implements Archive {

    private static final Logger log = LoggerFactory.getLogger(ZipArchive.class);

    private final ByteSource source;
    private final ZipFile zip;
    private final ExpandSpec spec;

    private ZipArchive(ByteSource source, ZipFile zip, ExpandSpec spec) {
        this.source = source;
        this.zip = zip;
        this.spec = spec;
    }

    static Archive open(ByteSource source, ExpandSpec spec) throws IOException {
        SeekableByteChannel channel = source.openChannel();
        try {
            // Local headers are read only when a member is opened: listing stays one read of the directory.
            ZipFile zip = ZipFile.builder().setSeekableByteChannel(channel).setIgnoreLocalFileHeader(true).get();
            return new ZipArchive(source, zip, spec);
        } catch (IOException | RuntimeException e) {
            channel.close();
            return new Streamed(source, spec, Problems.describe(e));
        }
    }

    @Override
    public void list(MemberVisitor visitor, ExpandStats stats) throws IOException {
        List<ZipArchiveEntry> entries = Collections.list(zip.getEntries());
        if (entries.size() > spec.maxMembers()) {
            throw new ArchiveRejectedException("ZIP bomb guard: " + entries.size() + " entries, more than the limit of "
                    + spec.maxMembers());
        }
        long total = 0;
        for (ZipArchiveEntry e : entries) {
            total += Math.max(0, e.getSize());
        }
        if (total > spec.maxTotalBytes()) {
            throw new ArchiveRejectedException("ZIP bomb guard: members add up to " + total
                    + " bytes uncompressed, more than the limit of " + spec.maxTotalBytes());
        }
        Set<String> seen = new HashSet<>();
        for (ZipArchiveEntry e : entries) {
            if (e.isDirectory()) {
                continue;
            }
            if (e.isUnixSymlink()) {
                stats.notFile();
                continue;
            }
            String name = MemberNames.clean(e.getName());
            if (!seen.add(name)) {
                stats.duplicate();
                continue;
            }
            visitor.visit(new ArchiveMember(name, member(e, name), null, rejection(e)));
        }
    }

    @Override
    public ByteSource find(String name) throws IOException {
        ZipArchiveEntry found = null;
        for (ZipArchiveEntry e : zip.getEntries(name)) {
            found = e;
            break;
        }
        if (found == null) {
            for (ZipArchiveEntry e : Collections.list(zip.getEntries())) {
                if (MemberNames.clean(e.getName()).equals(name)) {
                    found = e;
                    break;
                }
            }
        }
        if (found == null || found.isDirectory()) {
            return null;
        }
        String rejection = rejection(found);
        if (rejection != null) {
            throw new ArchiveRejectedException(rejection);
        }
        return member(found, name);
    }

    private String rejection(ZipArchiveEntry e) {
        long size = e.getSize();
        long packed = e.getCompressedSize();
        if (size < 0) {
            return "the ZIP directory does not record this member's size";
        }
        if (!zip.canReadEntryData(e)) {
            return "cannot read this ZIP member: encrypted or an unsupported compression method";
        }
        if (size > spec.ratioFloorBytes() && packed >= 0 && size > spec.maxRatio() * Math.max(1, packed)) {
            return String.format(java.util.Locale.ROOT,
                    "ZIP bomb guard: the member inflates %d bytes to %d (%.0fx, limit %.0fx)",
                    packed, size, (double) size / Math.max(1, packed), spec.maxRatio());
        }
        return null;
    }

    private ByteSource member(ZipArchiveEntry e, String name) {
        return new StreamedMemberSource(source.name() + Lineage.MEMBER_SEPARATOR + name, e.getSize(),
                () -> zip.getInputStream(e));
    }

    @Override
    public void close() throws IOException {
        zip.close();
    }

    /** Front-to-back reading from local headers, for a ZIP whose central directory is unreadable. */
    static final class Streamed extends SequentialArchive<ZipArchiveEntry> {

        private final String directoryProblem;

        Streamed(ByteSource source, ExpandSpec spec, String directoryProblem) {
            super(source, spec);
            this.directoryProblem = directoryProblem;
        }

        @Override
        protected ArchiveInputStream<ZipArchiveEntry> stream() throws IOException {
            return new ZipArchiveInputStream(source.openAt(0), "UTF-8", true, true);
        }

        @Override
        protected String kind() {
            return "ZIP";
        }

        @Override
        protected boolean hasData(ZipArchiveEntry e) {
            return true;
        }

        /** A local header need not record the size (data descriptors): the member is inflated to count it. */
        @Override
        protected long readRest(ArchiveInputStream<ZipArchiveEntry> in, ZipArchiveEntry e, int headLength, long total)
                throws IOException {
            return headLength + drain(in, spec.maxTotalBytes() - total - headLength);
        }

        @Override
        protected long sizeOf(ArchiveInputStream<ZipArchiveEntry> in, ZipArchiveEntry e) throws IOException {
            return drain(in, spec.maxTotalBytes());
        }

        @Override
        protected void listed(long members) {
            log.warn("{}: the ZIP directory is unreadable ({}); its {} members were read from their local headers",
                    source.name(), directoryProblem, members);
        }

        private long drain(InputStream in, long budget) throws IOException {
            byte[] buffer = new byte[64 * 1024];
            long n = 0;
            int r;
            while ((r = in.read(buffer)) >= 0) {
                n += r;
                if (n > budget) {
                    throw new ArchiveRejectedException("ZIP bomb guard: members add up to more than "
                            + spec.maxTotalBytes() + " bytes uncompressed");
                }
            }
            return n;
        }
    }
}
