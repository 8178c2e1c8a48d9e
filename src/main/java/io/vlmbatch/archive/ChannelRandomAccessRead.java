package io.vlmbatch.archive;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;

import org.apache.pdfbox.io.RandomAccessRead;
import org.apache.pdfbox.io.RandomAccessReadView;

/**
 * PDFBox's random access over any seekable channel (a local file, or a {@link BlockCachedChannel} over
 * S3 or an archive member), so a document is parsed where it lies instead of being loaded into memory.
 */
final class ChannelRandomAccessRead implements RandomAccessRead {

    private static final int BUFFER = 16 * 1024;

    private final SeekableByteChannel channel;
    private final long length;
    private final ByteBuffer buffer = ByteBuffer.allocate(BUFFER);
    private long bufferStart; // file offset of buffer[0]
    private boolean closed;

    ChannelRandomAccessRead(SeekableByteChannel channel) throws IOException {
        this.channel = channel;
        this.length = channel.size();
        buffer.limit(0);
    }

    @Override
    public int read() throws IOException {
        if (!buffer.hasRemaining() && !fill()) {
            return -1;
        }
        return buffer.get() & 0xFF;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (len == 0) {
            return 0;
        }
        if (!buffer.hasRemaining() && !fill()) {
            return -1;
        }
        int n = Math.min(len, buffer.remaining());
        buffer.get(b, off, n);
        return n;
    }

    /** Loads the next stretch at the current position; false at the end. */
    private boolean fill() throws IOException {
        checkOpen();
        long pos = getPosition();
        if (pos >= length) {
            return false;
        }
        buffer.clear();
        channel.position(pos);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) {
                break;
            }
        }
        buffer.flip();
        bufferStart = pos;
        return buffer.hasRemaining();
    }

    @Override
    public long getPosition() {
        return bufferStart + buffer.position();
    }

    @Override
    public void seek(long position) throws IOException {
        checkOpen();
        if (position < 0) {
            throw new IOException("invalid position " + position);
        }
        long target = Math.min(position, length);
        if (target >= bufferStart && target <= bufferStart + buffer.limit()) {
            buffer.position((int) (target - bufferStart));
        } else {
            bufferStart = target;
            buffer.limit(0);
        }
    }

    @Override
    public long length() {
        return length;
    }

    @Override
    public boolean isClosed() {
        return closed;
    }

    @Override
    public boolean isEOF() {
        return getPosition() >= length;
    }

    @Override
    public RandomAccessReadView createView(long startPosition, long streamLength) {
        return new RandomAccessReadView(this, startPosition, streamLength);
    }

    @Override
    public void close() throws IOException {
        if (!closed) {
            closed = true;
            channel.close();
        }
    }

    private void checkOpen() throws IOException {
        if (closed) {
            throw new IOException("already closed");
        }
    }
}
