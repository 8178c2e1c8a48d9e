package io.vlmbatch.archive;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;

/**
 * Stops a stream after {@code limit} bytes. With {@code failPastLimit} a byte beyond the limit is an
 * error (a member that inflates to more than allowed: the decompression-bomb guard); without it the
 * stream just ends there (a member cut to its declared length).
 */
final class CappedInputStream extends FilterInputStream {

    private final long limit;
    private final boolean failPastLimit;
    private final String what;
    private long count;

    CappedInputStream(InputStream in, long limit, boolean failPastLimit, String what) {
        super(in);
        this.limit = limit;
        this.failPastLimit = failPastLimit;
        this.what = what;
    }

    @Override
    public int read() throws IOException {
        if (count >= limit) {
            return pastLimit();
        }
        int b = in.read();
        if (b >= 0) {
            count++;
        }
        return b;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (len == 0) {
            return 0;
        }
        if (count >= limit) {
            return pastLimit();
        }
        int n = in.read(b, off, (int) Math.min(len, limit - count));
        if (n > 0) {
            count += n;
        }
        return n;
    }

    @Override
    public long skip(long n) throws IOException {
        long skipped = in.skip(Math.min(n, limit - count));
        count += Math.max(0, skipped);
        return skipped;
    }

    @Override
    public int available() throws IOException {
        return (int) Math.min(in.available(), limit - count);
    }

    @Override
    public boolean markSupported() {
        return false;
    }

    private int pastLimit() throws IOException {
        if (failPastLimit && in.read() >= 0) {
            throw new ArchiveRejectedException(what + " is larger than the " + limit + "-byte limit");
        }
        return -1;
    }
}
