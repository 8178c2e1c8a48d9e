package io.vlmbatch.archive;

import java.io.IOException;

/**
 * One regular file found in an archive's listing.
 *
 * @param name      its path in the archive, cleaned by {@link MemberNames#clean}
 * @param source    its bytes, readable while the listing is in progress
 * @param head      its first bytes when the listing already read them (streamed archives), else null
 * @param rejection why it may not be read (a bomb limit), else null
 */
record ArchiveMember(String name, ByteSource source, byte[] head, String rejection) {

    /** The first bytes, reading them only when the listing did not. */
    byte[] head(int n) throws IOException {
        return head != null ? head : source.head(n);
    }
}
