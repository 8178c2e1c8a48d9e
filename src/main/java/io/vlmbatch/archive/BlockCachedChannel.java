package io.vlmbatch.archive;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.NonWritableChannelException;
import java.nio.channels.SeekableByteChannel;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Random access over a {@link ByteSource} that can only stream from an offset (an S3 object read by
 * ranged requests, a compressed archive member). Reads go through fixed-size blocks kept in a small
 * LRU cache; a read just past the open stream continues that stream (or skips a short gap) instead of
 * opening a new one, so sequential reads cost one stream and the jumps of a PDF parser cost a few.
 * Memory: at most {@code blockSize * maxBlocks} bytes. Not thread-safe (one reader at a time).
 */
final class BlockCachedChannel implements SeekableByteChannel {

    static final int DEFAULT_BLOCK = 256 * 1024;
    static final int DEFAULT_BLOCKS = 32;
    /** A forward gap up to this long is skipped on the open stream rather than reopening. */
    private static final long SKIP_RATHER_THAN_REOPEN = 4L * 1024 * 1024;

    private final ByteSource source;
    private final long size;
    private final int blockSize;
    private final Map<Long, byte[]> blocks;
    private InputStream stream;
    private long streamPos = -1;
    private long position;
    private boolean open = true;

    BlockCachedChannel(ByteSource source) throws IOException {
        this(source, DEFAULT_BLOCK, DEFAULT_BLOCKS);
    }

    BlockCachedChannel(ByteSource source, int blockSize, int maxBlocks) throws IOException {
        this.source = source;
        this.size = source.size();
        this.blockSize = blockSize;
        this.blocks = new LinkedHashMap<>(maxBlocks * 2, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<Long, byte[]> eldest) {
                return size() > maxBlocks;
            }
        };
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        ensureOpen();
        if (position >= size) {
            return -1;
        }
        int total = 0;
        while (dst.hasRemaining() && position < size) {
            long index = position / blockSize;
            byte[] block = block(index);
            int offset = (int) (position - index * blockSize);
            if (offset >= block.length) {
                throw new java.io.EOFException(source.name() + " ended at " + (index * blockSize + block.length)
                        + " bytes, shorter than its stated " + size);
            }
            int n = Math.min(dst.remaining(), block.length - offset);
            dst.put(block, offset, n);
            position += n;
            total += n;
        }
        return total;
    }

    private byte[] block(long index) throws IOException {
        byte[] cached = blocks.get(index);
        if (cached != null) {
            return cached;
        }
        long start = index * blockSize;
        if (stream == null || start < streamPos || start - streamPos > SKIP_RATHER_THAN_REOPEN) {
            closeStream();
            stream = source.openAt(start);
            streamPos = start;
        } else if (start > streamPos) {
            stream.skipNBytes(start - streamPos);
            streamPos = start;
        }
        int length = (int) Math.min(blockSize, size - start);
        byte[] block = stream.readNBytes(length);
        streamPos += block.length;
        blocks.put(index, block);
        return block;
    }

    @Override
    public long position() throws IOException {
        ensureOpen();
        return position;
    }

    @Override
    public SeekableByteChannel position(long newPosition) throws IOException {
        ensureOpen();
        if (newPosition < 0) {
            throw new IllegalArgumentException("negative position " + newPosition);
        }
        position = newPosition;
        return this;
    }

    @Override
    public long size() throws IOException {
        ensureOpen();
        return size;
    }

    @Override
    public int write(ByteBuffer src) {
        throw new NonWritableChannelException();
    }

    @Override
    public SeekableByteChannel truncate(long newSize) {
        throw new NonWritableChannelException();
    }

    @Override
    public boolean isOpen() {
        return open;
    }

    @Override
    public void close() throws IOException {
        open = false;
        blocks.clear();
        closeStream();
    }

    private void closeStream() throws IOException {
        if (stream != null) {
            InputStream s = stream;
            stream = null;
            streamPos = -1;
            s.close();
        }
    }

    private void ensureOpen() throws ClosedChannelException {
        if (!open) {
            throw new ClosedChannelException();
        }
    }
}
