package io.vlmbatch.archive;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;

import javax.imageio.stream.ImageInputStreamImpl;

/** An ImageIO stream over a seekable channel: a TIFF is decoded frame by frame where it lies. */
final class ChannelImageInputStream extends ImageInputStreamImpl {

    private static final int BUFFER = 64 * 1024;

    private final SeekableByteChannel channel;
    private final long length;
    private final ByteBuffer buffer = ByteBuffer.allocate(BUFFER);
    private long bufferStart;

    ChannelImageInputStream(SeekableByteChannel channel) throws IOException {
        this.channel = channel;
        this.length = channel.size();
        buffer.limit(0);
    }

    @Override
    public int read() throws IOException {
        checkClosed();
        bitOffset = 0;
        if (!position() || !buffer.hasRemaining() && !fill()) {
            return -1;
        }
        streamPos++;
        return buffer.get() & 0xFF;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        checkClosed();
        bitOffset = 0;
        if (len == 0) {
            return 0;
        }
        if (!position() || !buffer.hasRemaining() && !fill()) {
            return -1;
        }
        int n = Math.min(len, buffer.remaining());
        buffer.get(b, off, n);
        streamPos += n;
        return n;
    }

    /** Points the buffer at streamPos (which seek() moves); false past the end. */
    private boolean position() {
        if (streamPos >= length) {
            return false;
        }
        if (streamPos >= bufferStart && streamPos < bufferStart + buffer.limit()) {
            buffer.position((int) (streamPos - bufferStart));
        } else {
            bufferStart = streamPos;
            buffer.limit(0);
        }
        return true;
    }

    private boolean fill() throws IOException {
        buffer.clear();
        channel.position(streamPos);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) {
                break;
            }
        }
        buffer.flip();
        bufferStart = streamPos;
        return buffer.hasRemaining();
    }

    @Override
    public long length() {
        return length;
    }

    @Override
    public void close() throws IOException {
        super.close();
        channel.close();
    }
}
