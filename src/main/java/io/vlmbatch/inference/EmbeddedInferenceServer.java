package io.vlmbatch.inference;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The embedded inference server: `python -m vlmserve serve` from the repo's venv as a child process,
 * started on first use, shared by everything in this process that asks for it (a CLI run; in `serve`
 * every run and the playground), stopped at close.
 *
 * If the server dies while in use, that is logged with the tail of its log and it is started again on
 * the same port, at most {@link #MAX_RESTARTS} times in the life of this object; a client pool waits for
 * it meanwhile ({@link #restarting()}).
 *
 * The server runs under a small bash watchdog that holds our stdin: if this JVM dies without running
 * its shutdown hooks (kill -9), the pipe closes and the watchdog stops the server, so no orphaned
 * model server keeps the port and the memory.
 */
public final class EmbeddedInferenceServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(EmbeddedInferenceServer.class);
    /** Loading GLM-4V-9B from a slow disk and quantizing it can take minutes. */
    private static final Duration HEALTH_TIMEOUT = Duration.ofMinutes(15);
    /** Restarts after a crash; a server that keeps dying has a cause a restart will not fix. */
    static final int MAX_RESTARTS = 3;
    // stop: TERM, then KILL if the server is still there after 10 s (uvicorn's graceful shutdown waits
    // for requests in flight, which may never end).
    private static final String WATCHDOG = """
            stop() {
              kill -TERM $server 2>/dev/null
              for _ in $(seq 100); do kill -0 $server 2>/dev/null || break; sleep 0.1; done
              kill -KILL $server 2>/dev/null; wait $server
            }
            "$@" </dev/null & server=$!
            trap 'stop; exit 143' TERM INT
            cat <&0 >/dev/null & reader=$!   # explicit <&0: background jobs otherwise read /dev/null
            wait -n $server $reader
            kill $reader 2>/dev/null
            stop
            """;

    private final Path home;
    private final Path model;
    private final Path logDir;
    private final Integer gpu;
    // volatile: close() and knownUrl() must not wait for a start in progress (minutes, under the lock)
    private volatile Process process;
    private volatile String healthyUrl;
    private volatile boolean closed;
    private volatile boolean restarting;
    private int restarts;
    private int port;
    private Path logFile;

    /**
     * Nothing starts before {@link #baseUrl()} is called.
     *
     * @param home   the vlm-batch checkout (holds .venv and inference/)
     * @param model  a checkpoint folder, or null for the tiny random model
     */
    public EmbeddedInferenceServer(Path home, Path model, Path logDir) {
        this(home, model, logDir, null);
    }

    /** @param gpu the one CUDA device this server sees (CUDA_VISIBLE_DEVICES), or null for the environment's */
    public EmbeddedInferenceServer(Path home, Path model, Path logDir, Integer gpu) {
        this.home = home;
        this.model = model;
        this.logDir = logDir;
        this.gpu = gpu;
    }

    /** Another server like this one (same checkout, model and log folder) on the given GPU. */
    public EmbeddedInferenceServer onGpu(int gpu) {
        return new EmbeddedInferenceServer(home, model, logDir, gpu);
    }

    /** True while the server is being started again after it died. */
    public boolean restarting() { return restarting; }

    /** The checkpoint folder, or null for the tiny random model. */
    public Path model() { return model; }

    /** The server's root URL, starting it (and waiting until it is healthy) on the first call. */
    public synchronized String baseUrl() throws IOException, InterruptedException {
        if (closed) throw new IllegalStateException("the embedded inference server was stopped");
        if (process == null) start();
        return url();
    }

    /** The root URL once the server is up, else null (nothing is started). */
    public String knownUrl() {
        return healthyUrl;
    }

    private String url() { return "http://127.0.0.1:" + port; }

    private void start() throws IOException, InterruptedException {
        if (closed) throw new IllegalStateException("the embedded inference server was stopped");
        Path python = home.resolve(".venv/bin/python");
        if (!Files.isExecutable(python)) {
            throw new IllegalStateException("inference.base_url is 'embedded' but the Python venv is missing (" + python
                    + "). Create it with scripts/setup-python (./vlm-batch does this for you), or point"
                    + " inference.base_url at a running OpenAI-compatible server.");
        }
        if (model != null && !Files.isRegularFile(model.resolve("config.json"))) {
            throw new IllegalStateException("--model " + model + " is not a checkpoint folder (no config.json there)."
                    + " Download THUDM/glm-4v-9b into a folder and pass that folder.");
        }
        if (model == null && port == 0) {
            System.err.println("""
                    ************************************************************************
                    * WARNING: no --model given: the embedded inference server runs the TINY *
                    * RANDOM model. Its answers are RANDOM TEXT, useful only to check the    *
                    * pipeline. Pass --model DIR (THUDM/glm-4v-9b) or set inference.base_url. *
                    ************************************************************************""");
        }
        if (port == 0) port = freePort(); // a restart keeps the port: clients know the server by its URL
        Files.createDirectories(logDir);
        logFile = logDir.resolve("vlmserve-" + port + ".log");
        List<String> cmd = new ArrayList<>(List.of("bash", "-c", WATCHDOG, "vlmserve-watchdog",
                python.toString(), "-m", "vlmserve", "serve",
                "--model", model == null ? "tiny-random" : model.toAbsolutePath().toString(),
                "--host", "127.0.0.1", "--port", Integer.toString(port)));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(home.resolve("inference").toFile())
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()));
        if (gpu != null) pb.environment().put("CUDA_VISIBLE_DEVICES", gpu.toString());
        pb.environment().merge("PYTHONPATH", home.resolve("inference").toString(), (a, b) -> b + ":" + a);
        log.info("starting the inference server: {} -m vlmserve serve --model {} --port {}{} (log: {})",
                python, model == null ? "tiny-random" : model, port, gpu == null ? "" : " on GPU " + gpu, logFile);
        Process started = pb.start();
        process = started;
        try {
            awaitHealthy(HEALTH_TIMEOUT);
            healthyUrl = url();
        } catch (IOException | RuntimeException | InterruptedException e) {
            stop();
            process = null;
            throw e;
        }
        started.onExit().thenRun(() -> Thread.ofVirtual().name("vlmserve-restart").start(() -> exited(started)));
    }

    /** The server process ended: unless we stopped it, say so with its last words and start it again. */
    private void exited(Process dead) {
        String tail;
        synchronized (this) {
            if (closed || process != dead) return; // stopped by us, or already replaced
            healthyUrl = null;
            restarting = restarts < MAX_RESTARTS;
        }
        try {
            tail = tail();
        } catch (IOException e) {
            tail = "(log unreadable: " + e + ")";
        }
        log.error("the embedded inference server (port {}) died with exit code {}; {}\n--- last lines of {} ---\n{}",
                port, dead.exitValue(), restarting ? "starting it again (restart " + (restarts + 1) + " of " + MAX_RESTARTS + ")"
                        : "not starting it again: it died " + (MAX_RESTARTS + 1) + " times", logFile, tail);
        if (!restarting) return;
        synchronized (this) {
            try {
                restarts++;
                process = null;
                start();
                log.info("the embedded inference server is back on port {}", port);
            } catch (Exception e) {
                log.error("the embedded inference server could not be started again: {}", e.getMessage());
            } finally {
                restarting = false;
            }
        }
    }

    private void awaitHealthy(Duration timeout) throws IOException, InterruptedException {
        URI health = URI.create(url() + "/health");
        long deadline = System.nanoTime() + timeout.toNanos();
        try (HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build()) {
            while (true) {
                if (!process.isAlive()) {
                    throw new IllegalStateException("the inference server exited with code " + process.exitValue()
                            + " before it was healthy" + hint() + "\n--- last lines of " + logFile + " ---\n" + tail());
                }
                try {
                    HttpResponse<String> r = http.send(HttpRequest.newBuilder(health).timeout(Duration.ofSeconds(5)).build(),
                            HttpResponse.BodyHandlers.ofString());
                    if (r.statusCode() == 200) return;
                } catch (IOException notYet) {
                    // still starting
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("the inference server was not healthy after " + timeout.toSeconds()
                            + " s\n--- last lines of " + logFile + " ---\n" + tail());
                }
                Thread.sleep(250);
            }
        }
    }

    private String hint() throws IOException {
        String text = Files.readString(logFile, StandardCharsets.UTF_8);
        if (text.contains("No module named vlmserve") || text.contains("No module named 'vlmserve'")) {
            return " (the venv lacks the vlmserve package: run scripts/setup-python)";
        }
        if (text.contains("No module named")) return " (a Python package is missing: run scripts/setup-python)";
        return "";
    }

    private String tail() throws IOException {
        List<String> lines = Files.readAllLines(logFile, StandardCharsets.UTF_8);
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    @Override
    public void close() {
        closed = true;
        stop();
    }

    private void stop() {
        Process process = this.process;
        if (process == null || !process.isAlive()) return;
        process.destroy(); // SIGTERM to the watchdog, which passes it on and waits for the server
        try {
            if (!process.waitFor(20, java.util.concurrent.TimeUnit.SECONDS)) {
                process.descendants().forEach(ProcessHandle::destroyForcibly);
                process.destroyForcibly();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
