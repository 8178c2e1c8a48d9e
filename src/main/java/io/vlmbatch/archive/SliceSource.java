package io.vlmbatch.archive;

import java.io.IOException;
import java.io.InputStream;

/** A stretch of another source stored as is: a member of a plain TAR, a STORED member of a ZIP. */
record SliceSource(ByteSource parent, long offset, long length, String name) implements ByteSource {

    @Override
    public long size() {
        return length;
    }

    @Override
    public InputStream openAt(long at) throws IOException {
        if (at > length) {
            at = length;
        }
        return new CappedInputStream(parent.openAt(offset + at), length - at, false, name);
    }
}
