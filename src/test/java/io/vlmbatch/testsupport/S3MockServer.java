package io.vlmbatch.testsupport;

import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Adobe S3Mock's standalone exec jar ({@code com.adobe.testing:s3mock:<version>:exec}) run as its own
 * {@code java -jar} process on free ports: a real S3-compatible HTTP server, outside the test JVM.
 *
 * <p>The jar is taken from the system property {@code s3mock.jar}, else from the build directory
 * (where the pom's maven-dependency-plugin copies it as {@code s3mock.jar} before the integration
 * tests), else from the local Maven repository. S3Mock accepts any credentials; clients still
 * need some, e.g. {@link #useDummyCredentials()}.
 *
 * <pre>{@code
 * try (S3MockServer s3 = S3MockServer.start()) {
 *     S3Client client = ... endpointOverride(URI.create(s3.endpoint())).forcePathStyle(true) ...
 * }
 * }</pre>
 */
public final class S3MockServer implements AutoCloseable {

    public static final String VERSION = "5.2.0";
    private static final Duration STARTUP = Duration.ofSeconds(120);

    private final Process process;
    private final int port;
    private final Path root;
    private final Path log;

    private S3MockServer(Process process, int port, Path root, Path log) {
        this.process = process;
        this.port = port;
        this.root = root;
        this.log = log;
    }

    /** Starts a server with an empty store and waits until it answers; retries on a port clash. */
    public static S3MockServer start() throws IOException, InterruptedException {
        Path jar = locateJar();
        IOException last = null;
        for (int attempt = 0; attempt < 3; attempt++) {
            try {
                return startOnce(jar);
            } catch (IOException e) {
                last = e;
            }
        }
        throw last;
    }

    private static S3MockServer startOnce(Path jar) throws IOException, InterruptedException {
        int httpPort = freePort();
        int httpsPort = freePort();
        Path root = Files.createTempDirectory("s3mock-root");
        Path log = Files.createTempFile("s3mock-", ".log");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> command = new ArrayList<>(List.of(java, "-Xmx512m", "-XX:TieredStopAtLevel=1", "-jar", jar.toString(),
                "--http.port=" + httpPort,
                "--server.port=" + httpsPort,
                "--com.adobe.testing.s3mock.store.root=" + root,
                "--spring.main.banner-mode=off"));
        Process process = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        S3MockServer server = new S3MockServer(process, httpPort, root, log);
        Runtime.getRuntime().addShutdownHook(new Thread(server::stopProcess));
        long deadline = System.nanoTime() + STARTUP.toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                server.deleteRoot();
                throw new IOException("S3Mock exited with code " + process.exitValue() + " during start-up; log:\n"
                        + server.logTail());
            }
            if (server.answers()) {
                return server;
            }
            Thread.sleep(200);
        }
        server.close();
        throw new IOException("S3Mock did not answer on port " + httpPort + " within " + STARTUP + "; log:\n" + server.logTail());
    }

    /** {@code http://127.0.0.1:PORT}, for an SDK endpoint override with path-style access. */
    public String endpoint() {
        return "http://127.0.0.1:" + port;
    }

    /**
     * Sets the AWS SDK's system-property credentials and region, which its default chains read, so
     * clients built from default settings work against this server.
     */
    public static void useDummyCredentials() {
        System.setProperty("aws.accessKeyId", "test-access-key");
        System.setProperty("aws.secretAccessKey", "test-secret-key");
        System.setProperty("aws.region", "us-east-1");
    }

    @Override
    public void close() {
        stopProcess();
        deleteRoot();
    }

    private void stopProcess() {
        if (!process.isAlive()) {
            return;
        }
        process.destroy();
        try {
            if (!process.waitFor(15, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    private boolean answers() {
        try {
            HttpURLConnection c = (HttpURLConnection) URI.create(endpoint() + "/").toURL().openConnection();
            c.setConnectTimeout(1000);
            c.setReadTimeout(5000);
            int status = c.getResponseCode();
            c.disconnect();
            return status == 200;
        } catch (IOException e) {
            return false;
        }
    }

    private String logTail() {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    private void deleteRoot() {
        try (var paths = Files.walk(root)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // a temp folder left behind is harmless
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            socket.setReuseAddress(true);
            return socket.getLocalPort();
        }
    }

    static Path locateJar() throws IOException {
        List<Path> candidates = new ArrayList<>();
        String property = System.getProperty("s3mock.jar");
        if (property != null) {
            candidates.add(Path.of(property));
        }
        try {
            // test classes live in ${build.dir}/test-classes; the pom copies the jar to ${build.dir}
            Path testClasses = Path.of(S3MockServer.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            candidates.add(testClasses.getParent().resolve("s3mock.jar"));
        } catch (Exception ignored) {
            // not loaded from a folder: fall through to the Maven repository
        }
        Path repo = Path.of(System.getProperty("maven.repo.local",
                Path.of(System.getProperty("user.home"), ".m2", "repository").toString()));
        candidates.add(repo.resolve("com/adobe/testing/s3mock/" + VERSION + "/s3mock-" + VERSION + "-exec.jar"));
        for (Path candidate : candidates) {
            if (Files.isRegularFile(candidate)) {
                return candidate;
            }
        }
        throw new IOException("S3Mock exec jar not found; looked at " + candidates
                + ". Run the tests through Maven (mvn verify), whose pre-integration-test phase copies it.");
    }
}
