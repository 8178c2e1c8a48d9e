package io.vlmbatch.store;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes an export file whole or not at all: the text goes to a temporary file beside it, which is moved
 * over the target once complete, so a reader never sees half a file and a failed export leaves the last
 * good one in place.
 */
final class AtomicFileWriter {
    private AtomicFileWriter() {}

    /** Writes the file's text (UTF-8); returns what it returns (the rows written). */
    @FunctionalInterface
    interface Body {
        long write(Writer w) throws IOException;
    }

    static long write(Path out, Body body) throws IOException {
        Path abs = out.toAbsolutePath();
        Files.createDirectories(abs.getParent());
        // Not createTempFile: its 0600 mode would make the export private; this one gets the umask's mode.
        Path tmp = abs.resolveSibling("." + abs.getFileName() + "." + ProcessHandle.current().pid() + "."
                + ThreadLocalRandom.current().nextInt(1 << 30) + ".tmp");
        long n;
        try (Writer w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8, StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE)) {
            n = body.write(w);
        } catch (RuntimeException | IOException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return n;
    }
}
