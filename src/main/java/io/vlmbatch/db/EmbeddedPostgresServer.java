package io.vlmbatch.db;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The PostgreSQL used when no datasource is configured: zonky's packaged binaries, with the data
 * folder under the user's data directory so that runs (and restarts) share state across processes.
 *
 * Several vlm-batch processes may use it at once (a run and a `status`), so a process that finds the
 * server already running joins it, and the last one out stops it. A server left behind by a killed
 * process is joined the same way; a postmaster.pid whose process is gone is removed before starting.
 *
 * Local connections are not trusted: any user of the machine could otherwise connect as the superuser
 * and read or change every result. The superuser has a generated password, kept in the data directory
 * (vlm-batch.password, mode 0600, readable only by the user the server runs as), and pg_hba.conf asks
 * every connection for it (scram-sha-256). zonky's initdb always makes a trusting cluster, and data
 * directories of earlier releases are trusting too: both are locked down right after the server first
 * starts, and on every start until pg_hba.conf is ours, so a crash halfway through is finished next time.
 */
public final class EmbeddedPostgresServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(EmbeddedPostgresServer.class);
    static final String PASSWORD_FILE = "vlm-batch.password";
    private static final Duration JOIN_WAIT = Duration.ofSeconds(60);
    /** zonky's lock file: held (an OS lock) by the process that started the server, for as long as it lives. */
    private static final String STARTER_LOCK = "epg-lock";
    static final String HBA_MARK = "# vlm-batch: every connection needs the password in " + PASSWORD_FILE;

    private final Path dataDir;
    private final int port;
    private final EmbeddedPostgres started; // null when we joined a running server

    private EmbeddedPostgresServer(Path dataDir, int port, EmbeddedPostgres started) {
        this.dataDir = dataDir;
        this.port = port;
        this.started = started;
    }

    /** The superuser's password; empty for a server of an earlier release not yet restarted by this one (it trusts). */
    public String password() {
        return passwordIn(dataDir);
    }

    /**
     * Gives the superuser a password (generated once, kept in the data directory) and makes pg_hba.conf
     * require it. The password is set before pg_hba.conf changes, so no step leaves a server nobody can
     * log in to; pg_hba.conf is replaced by a rename, so it is never half written.
     */
    private void requirePassword() throws IOException {
        Path hba = dataDir.resolve("pg_hba.conf");
        if (Files.isRegularFile(hba) && Files.readString(hba).startsWith(HBA_MARK) && Files.isRegularFile(dataDir.resolve(PASSWORD_FILE))) {
            return;
        }
        Path pwFile = dataDir.resolve(PASSWORD_FILE);
        if (!Files.isRegularFile(pwFile)) {
            byte[] random = new byte[24];
            new java.security.SecureRandom().nextBytes(random);
            writePrivate(pwFile, Base64.getUrlEncoder().withoutPadding().encodeToString(random) + "\n");
        }
        String password = password();
        if (!password.matches("[A-Za-z0-9_-]{16,}")) throw new IOException(pwFile + " does not hold a password vlm-batch wrote");
        try (Connection c = DriverManager.getConnection(jdbcUrl(), user(), password); Statement s = c.createStatement()) {
            s.execute("SET password_encryption = 'scram-sha-256'");
            s.execute("ALTER ROLE postgres PASSWORD '" + password + "'");
            writePrivate(hba, HBA_MARK + "\n"
                    + "local all all scram-sha-256\n"
                    + "host  all all 127.0.0.1/32 scram-sha-256\n"
                    + "host  all all ::1/128 scram-sha-256\n");
            s.execute("SELECT pg_reload_conf()");
        } catch (SQLException e) {
            throw new IOException("cannot set the embedded PostgreSQL's password: " + e.getMessage(), e);
        }
        log.info("the embedded PostgreSQL in {} now requires the password kept in {}", dataDir, pwFile);
    }

    /** Written beside the target with mode 0600 from the start, then renamed over it. */
    private static void writePrivate(Path target, String text) throws IOException {
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        Files.createFile(tmp, java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                java.nio.file.attribute.PosixFilePermissions.fromString("rw-------")));
        Files.writeString(tmp, text);
        Files.move(tmp, target, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    public static EmbeddedPostgresServer startOrJoin(Path dataDir) throws IOException {
        Files.createDirectories(dataDir);
        Optional<Integer> running = runningPort(dataDir);
        // A live postmaster serves this folder: join it. One still starting up (or recovering after a crash)
        // refuses connections for a while; starting a second server on the folder could only fail.
        long deadline = System.nanoTime() + JOIN_WAIT.toNanos();
        while (running.isPresent()) {
            if (canConnect(running.get(), passwordIn(dataDir))) {
                log.debug("joining the embedded PostgreSQL already running on port {} ({})", running.get(), dataDir);
                return new EmbeddedPostgresServer(dataDir, running.get(), null);
            }
            if (System.nanoTime() > deadline) {
                throw new IOException("the embedded PostgreSQL serving " + dataDir + " (port " + running.get() + ") refused connections for "
                        + JOIN_WAIT.toSeconds() + " s; see " + dataDir.resolveSibling("postgres.log"));
            }
            sleep(500);
            running = runningPort(dataDir);
        }
        Path pidFile = dataDir.resolve("postmaster.pid");
        if (Files.exists(pidFile)) {
            // Left by a server that died with its process (kill -9 of the machine, OOM): PostgreSQL
            // would refuse to start while it names a live PID of some other program.
            log.warn("removing a stale {} (its server is gone)", pidFile);
            Files.delete(pidFile);
        }
        int port = freePort();
        // The server logs to a file, not to pipes into this JVM: were this process killed, a server
        // writing into a dead pipe would die with it, taking other clients' connections along.
        java.io.File pgLog = dataDir.resolveSibling("postgres.log").toFile();
        EmbeddedPostgres.Builder builder = EmbeddedPostgres.builder();
        String password = passwordIn(dataDir);
        // zonky checks that the server is up by logging in: with the password, once the directory has one
        if (!password.isEmpty()) builder.setConnectConfig("password", password);
        EmbeddedPostgres pg = builder
                .setOutputRedirector(ProcessBuilder.Redirect.appendTo(pgLog))
                .setErrorRedirector(ProcessBuilder.Redirect.appendTo(pgLog))
                .setDataDirectory(dataDir)
                .setCleanDataDirectory(false)
                .setRegisterShutdownHook(false)
                .setPort(port)
                // zonky turns this off for test speed; results must survive a crash of the machine too
                .setServerConfig("synchronous_commit", "on")
                .setPGStartupWait(Duration.ofSeconds(60))
                .start();
        log.debug("started the embedded PostgreSQL on port {} ({})", port, dataDir);
        EmbeddedPostgresServer server = new EmbeddedPostgresServer(dataDir, port, pg);
        try {
            server.requirePassword();
        } catch (IOException | RuntimeException e) {
            pg.close();
            throw e;
        }
        return server;
    }

    public String jdbcUrl() {
        return "jdbc:postgresql://127.0.0.1:" + port + "/postgres";
    }

    public String user() { return "postgres"; }

    public int port() { return port; }

    /** The port in postmaster.pid, if the process it names is alive and is a postgres. */
    private static Optional<Integer> runningPort(Path dataDir) throws IOException {
        Path pidFile = dataDir.resolve("postmaster.pid");
        if (!Files.isRegularFile(pidFile)) return Optional.empty();
        List<String> lines = Files.readAllLines(pidFile);
        if (lines.size() < 4) return Optional.empty();
        try {
            long pid = Long.parseLong(lines.get(0).trim());
            int port = Integer.parseInt(lines.get(3).trim());
            boolean alive = ProcessHandle.of(pid)
                    .filter(ProcessHandle::isAlive)
                    .map(h -> h.info().command().map(c -> c.contains("postgres")).orElse(true))
                    .orElse(false);
            return alive ? Optional.of(port) : Optional.empty();
        } catch (NumberFormatException e) {
            return Optional.empty();
        }
    }

    private static String passwordIn(Path dataDir) {
        Path f = dataDir.resolve(PASSWORD_FILE);
        try {
            return Files.isRegularFile(f) ? Files.readString(f).strip() : "";
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("cannot read " + f, e);
        }
    }

    private static boolean canConnect(int port, String password) {
        try (Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + port + "/postgres", "postgres", password)) {
            return c.isValid(5);
        } catch (SQLException e) {
            return false;
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** Stops the server unless another process is still connected (call after closing our own pool). */
    @Override
    public void close() {
        try {
            if (otherClients() > 0) {
                log.debug("leaving the embedded PostgreSQL running: another vlm-batch process uses it");
                return;
            }
            if (started != null) {
                started.close();
            } else if (starterAlive()) {
                // The process that started it still holds zonky's lock and will stop it at its own exit;
                // stopping it from here would leave a folder nobody could start a server in until it exits.
                log.debug("leaving the embedded PostgreSQL running: the process that started it is still alive");
            } else {
                Optional<Long> pid = Files.readAllLines(dataDir.resolve("postmaster.pid")).stream().findFirst()
                        .map(String::trim).map(Long::parseLong);
                // SIGTERM is PostgreSQL's "smart" shutdown: it still waits for any client that sneaks in.
                pid.flatMap(ProcessHandle::of).ifPresent(h -> {
                    h.destroy();
                    h.onExit().orTimeout(30, java.util.concurrent.TimeUnit.SECONDS).exceptionally(t -> h).join();
                });
            }
        } catch (Exception e) {
            log.warn("could not stop the embedded PostgreSQL cleanly: {}", e.toString());
        }
    }

    /** Whether the starter's OS lock on epg-lock is still held (a lock of a dead process is gone with it). */
    private boolean starterAlive() throws IOException {
        Path lockFile = dataDir.resolve(STARTER_LOCK);
        if (!Files.exists(lockFile)) return false;
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(lockFile, java.nio.file.StandardOpenOption.WRITE)) {
            java.nio.channels.FileLock probe = ch.tryLock();
            if (probe == null) return true;
            probe.release();
            return false;
        } catch (java.nio.channels.OverlappingFileLockException heldByThisJvm) {
            return true;
        }
    }

    private static void sleep(long ms) throws IOException {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for the embedded PostgreSQL", e);
        }
    }

    private int otherClients() throws SQLException {
        try (Connection c = DriverManager.getConnection(jdbcUrl(), user(), password());
             Statement s = c.createStatement();
             ResultSet r = s.executeQuery("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")) {
            r.next();
            return r.getInt(1);
        }
    }
}
