package io.vlmbatch.testsupport;

import io.vlmbatch.db.EmbeddedPostgresServer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * An embedded PostgreSQL that a test starts in a folder of its own and that is gone once the test closes
 * it. EmbeddedPostgresServer.close() leaves a server running while any client is connected, which is
 * right for vlm-batch processes sharing one; in a test, the client is typically a connection pool of a
 * Spring test context, which lives until the JVM ends, and nothing stops the server after that: it
 * outlived the test run and held its memory. So close() here ends with a fast shutdown (SIGINT), which
 * disconnects such clients.
 */
public final class TestPostgres implements AutoCloseable {
    private final Path dataDir;
    private final EmbeddedPostgresServer server;

    private TestPostgres(Path dataDir, EmbeddedPostgresServer server) {
        this.dataDir = dataDir;
        this.server = server;
    }

    /** Starts a server in dataDir (a folder no other test uses). */
    public static TestPostgres start(Path dataDir) throws IOException {
        return new TestPostgres(dataDir, EmbeddedPostgresServer.startOrJoin(dataDir));
    }

    public String jdbcUrl() {
        return server.jdbcUrl();
    }

    public String user() {
        return server.user();
    }

    public String password() {
        return server.password();
    }

    public int port() {
        return server.port();
    }

    @Override
    public void close() {
        server.close();
        Optional<ProcessHandle> postmaster = postmaster();
        if (postmaster.isEmpty()) return;
        try {
            new ProcessBuilder("kill", "-INT", Long.toString(postmaster.get().pid())).inheritIO().start().waitFor(10, TimeUnit.SECONDS);
            postmaster.get().onExit().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IllegalStateException("the embedded PostgreSQL in " + dataDir + " (pid " + postmaster.get().pid()
                    + ") did not stop: " + e, e);
        }
    }

    /** The live postgres process that postmaster.pid names, if any. */
    private Optional<ProcessHandle> postmaster() {
        Path pidFile = dataDir.resolve("postmaster.pid");
        try {
            if (!Files.isRegularFile(pidFile)) return Optional.empty();
            List<String> lines = Files.readAllLines(pidFile);
            if (lines.isEmpty()) return Optional.empty();
            return ProcessHandle.of(Long.parseLong(lines.getFirst().trim())).filter(ProcessHandle::isAlive)
                    .filter(h -> h.info().command().map(c -> c.contains("postgres")).orElse(false));
        } catch (IOException | NumberFormatException e) {
            return Optional.empty(); // the server removed the file as it stopped
        }
    }
}
