package io.vlmbatch.archive;

import java.io.IOException;
import java.io.InputStream;
import java.util.HashSet;
import java.util.Set;

import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;

/**
 * A TAR or TAR.GZ, read front to back (a TAR has no directory). A member is read by walking the
 * headers to it again; in a plain TAR the data of earlier members is skipped, in a TAR.GZ it has to be
 * inflated on the way. Members cut off by the end of a truncated archive are not listed.
 */
final class TarArchive implements Archive {

    private final ByteSource source;
    private final boolean gzip;
    private final ExpandSpec spec;

    TarArchive(ByteSource source, boolean gzip, ExpandSpec spec) {
        this.source = source;
        this.gzip = gzip;
        this.spec = spec;
    }

    private TarArchiveInputStream stream() throws IOException {
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

    private String kind() {
        return gzip ? "TAR.GZ" : "TAR";
    }

    @Override
    public void list(MemberVisitor visitor, ExpandStats stats) throws IOException {
        long count = 0;
        long total = 0;
        long listed = 0;
        Set<String> seen = new HashSet<>();
        long packed = source.size();
        try (TarArchiveInputStream in = stream()) {
            while (true) {
                TarArchiveEntry e;
                byte[] head;
                try {
                    e = in.getNextEntry();
                    if (e == null) {
                        break;
                    }
                    if (++count > spec.maxMembers()) {
                        throw new ArchiveRejectedException(kind() + " bomb guard: more than " + spec.maxMembers() + " entries");
                    }
                    if (e.isDirectory()) {
                        continue;
                    }
                    if (!e.isFile() || e.isSparse()) {
                        stats.notFile();
                        continue;
                    }
                    total += e.getSize();
                    if (total > spec.maxTotalBytes()) {
                        throw new ArchiveRejectedException(kind() + " bomb guard: members add up to more than "
                                + spec.maxTotalBytes() + " bytes");
                    }
                    if (gzip && total > spec.ratioFloorBytes() && total > spec.maxRatio() * Math.max(1, packed)) {
                        throw new ArchiveRejectedException(String.format(java.util.Locale.ROOT,
                                "TAR.GZ bomb guard: %d compressed bytes inflate to more than %d (limit %.0fx)",
                                packed, total, spec.maxRatio()));
                    }
                    head = in.readNBytes(Format.HEAD);
                    // Read to the member's end before listing it: one cut short is not listed.
                    in.skipNBytes(e.getSize() - head.length);
                } catch (ArchiveRejectedException bomb) {
                    throw bomb;
                } catch (IOException | RuntimeException damage) {
                    throw new ArchiveRejectedException("truncated or corrupt " + kind() + " (" + Problems.describe(damage)
                            + "); the " + listed + " members before the damage are listed", damage);
                }
                String name = MemberNames.clean(e.getName());
                if (!seen.add(name)) {
                    stats.duplicate();
                    continue;
                }
                listed++;
                visitor.visit(new ArchiveMember(name, member(name, e.getSize()), head, null));
            }
        }
    }

    @Override
    public ByteSource find(String name) throws IOException {
        try (TarArchiveInputStream in = stream()) {
            TarArchiveEntry e;
            while ((e = in.getNextEntry()) != null) {
                if (e.isFile() && !e.isSparse() && MemberNames.clean(e.getName()).equals(name)) {
                    return member(name, e.getSize());
                }
            }
        }
        return null;
    }

    private ByteSource member(String name, long size) {
        return new StreamedMemberSource(source.name() + Lineage.MEMBER_SEPARATOR + name, size, () -> openMember(name));
    }

    private InputStream openMember(String name) throws IOException {
        TarArchiveInputStream in = stream();
        try {
            TarArchiveEntry e;
            while ((e = in.getNextEntry()) != null) {
                if (e.isFile() && !e.isSparse() && MemberNames.clean(e.getName()).equals(name)) {
                    return in; // positioned at the member's data; reads end at the member's end
                }
            }
        } catch (IOException | RuntimeException e) {
            in.close();
            throw e;
        }
        in.close();
        throw new ArchiveRejectedException("member " + name + " is no longer in " + source.name());
    }

    @Override
    public void close() {
        // nothing held between calls
    }
}
