package io.vlmbatch.archive;

import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** A local file, read in place. */
public record LocalFileSource(Path path) implements ByteSource {

    @Override
    public String name() {
        return path.toUri().toString();
    }

    @Override
    public long size() throws IOException {
        return Files.size(path);
    }

    @Override
    public InputStream openAt(long offset) throws IOException {
        FileChannel channel = FileChannel.open(path, StandardOpenOption.READ);
        channel.position(offset);
        return Channels.newInputStream(channel);
    }

    @Override
    public SeekableByteChannel openChannel() throws IOException {
        return FileChannel.open(path, StandardOpenOption.READ);
    }
}
