package io.vlmbatch.archive;

import java.io.Closeable;
import java.io.IOException;

/** A ZIP or TAR opened for listing or for finding members; close it when done with its members. */
interface Archive extends Closeable {

    /** Receives members in archive order; may throw to stop the listing. */
    @FunctionalInterface
    interface MemberVisitor {
        void visit(ArchiveMember member) throws IOException;
    }

    /**
     * Lists regular files in archive order. Directories, links and device entries are skipped and
     * counted in {@code stats}. When the archive is damaged part-way, the members before the damage
     * have been visited and an {@link ArchiveRejectedException} says what went wrong.
     */
    void list(MemberVisitor visitor, ExpandStats stats) throws IOException;

    /** The member with this (cleaned) name, or null. */
    ByteSource find(String name) throws IOException;

    static Archive open(Format format, ByteSource source, ExpandSpec spec) throws IOException {
        return switch (format) {
            case ZIP -> ZipArchive.open(source, spec);
            case TAR -> new TarArchive(source, false, spec);
            case TAR_GZ -> new TarArchive(source, true, spec);
            default -> throw new IllegalArgumentException(format + " is not an archive");
        };
    }
}
