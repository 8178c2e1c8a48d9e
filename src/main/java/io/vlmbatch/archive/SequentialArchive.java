package io.vlmbatch.archive;

import java.io.IOException;
import java.io.InputStream;
import java.util.HashSet;
import java.util.Set;

import org.apache.commons.compress.archivers.ArchiveEntry;
import org.apache.commons.compress.archivers.ArchiveInputStream;

/**
 * An archive read front to back from its local headers (a TAR, or a ZIP whose directory is unreadable):
 * listing walks every header and reads each member to its end, so a member cut short by damage is not
 * listed and the members before the damage are; a member is read by walking the headers to it again.
 * The formats differ in which entries hold data and in how a member's size is learnt and bounded.
 */
abstract class SequentialArchive<E extends ArchiveEntry> implements Archive {

    protected final ByteSource source;
    protected final ExpandSpec spec;

    SequentialArchive(ByteSource source, ExpandSpec spec) {
        this.source = source;
        this.spec = spec;
    }

    /** A new stream over the whole archive, positioned before its first header. */
    protected abstract ArchiveInputStream<E> stream() throws IOException;

    /** The format's name in messages: TAR, TAR.GZ, ZIP. */
    protected abstract String kind();

    /** Whether a non-directory entry is a member with data (not a link, device or sparse file). */
    protected abstract boolean hasData(E entry);

    /**
     * Reads the rest of a member whose first {@code headLength} bytes were read, checking the bomb guards
     * against the {@code total} of the members before it; returns the member's size.
     */
    protected abstract long readRest(ArchiveInputStream<E> in, E entry, int headLength, long total) throws IOException;

    /** The size of the member the stream is positioned at, for {@link #find}. */
    protected abstract long sizeOf(ArchiveInputStream<E> in, E entry) throws IOException;

    /** Called once the whole archive has been listed. */
    protected void listed(long members) {}

    @Override
    public void list(MemberVisitor visitor, ExpandStats stats) throws IOException {
        long count = 0;
        long total = 0;
        long listed = 0;
        Set<String> seen = new HashSet<>();
        try (ArchiveInputStream<E> in = stream()) {
            while (true) {
                E e;
                byte[] head;
                long size;
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
                    if (!hasData(e)) {
                        stats.notFile();
                        continue;
                    }
                    head = in.readNBytes(Format.HEAD);
                    size = readRest(in, e, head.length, total);
                    total += size;
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
                visitor.visit(new ArchiveMember(name, member(name, size), head, null));
            }
        }
        listed(listed);
    }

    @Override
    public ByteSource find(String name) throws IOException {
        try (ArchiveInputStream<E> in = stream()) {
            E e;
            while ((e = in.getNextEntry()) != null) {
                if (!e.isDirectory() && hasData(e) && MemberNames.clean(e.getName()).equals(name)) {
                    return member(name, sizeOf(in, e));
                }
            }
        }
        return null;
    }

    private ByteSource member(String name, long size) {
        return new StreamedMemberSource(source.name() + Lineage.MEMBER_SEPARATOR + name, size, () -> openMember(name));
    }

    private InputStream openMember(String name) throws IOException {
        ArchiveInputStream<E> in = stream();
        try {
            E e;
            while ((e = in.getNextEntry()) != null) {
                if (!e.isDirectory() && hasData(e) && MemberNames.clean(e.getName()).equals(name)) {
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
