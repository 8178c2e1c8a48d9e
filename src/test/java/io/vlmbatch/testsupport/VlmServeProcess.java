package io.vlmbatch.testsupport;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The real inference server (python -m vlmserve serve --model tiny-random) as a process of the test. */
public final class VlmServeProcess implements AutoCloseable {
    private final int port;
    private final Path log;
    private final List<String> extraArgs;
    private Process process;

    private VlmServeProcess(int port, Path log, List<String> extraArgs) {
        this.port = port;
        this.log = log;
        this.extraArgs = extraArgs;
    }

    /** @param extraArgs more flags of {@code vlmserve serve} (e.g. "--max-batch", "1") */
    public static VlmServeProcess start(Path logDir, String... extraArgs) throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        VlmServeProcess server = new VlmServeProcess(port, logDir.resolve("vlmserve-" + port + ".log"), List.of(extraArgs));
        server.startProcess();
        return server;
    }

    /**
     * The embedded inference servers a vlm-batch process started (base_url: embedded): the python
     * processes among its descendants, not their bash watchdogs.
     */
    public static List<ProcessHandle> embeddedIn(Process vlmBatch) {
        return vlmBatch.descendants().filter(p -> {
            String cmd = p.info().command().orElse("");
            String args = String.join(" ", p.info().arguments().orElse(new String[0]));
            return cmd.contains("python") && args.contains("vlmserve") && args.contains("serve");
        }).toList();
    }

    /** Starts (again) on the same port: a restarted server, as after an outage. */
    public void startProcess() throws Exception {
        Path root = RepoPaths.root();
        List<String> command = new java.util.ArrayList<>(List.of(RepoPaths.python().toString(), "-m", "vlmserve", "serve",
                "--model", "tiny-random", "--host", "127.0.0.1", "--port", Integer.toString(port)));
        command.addAll(extraArgs);
        ProcessBuilder pb = new ProcessBuilder(command)
                .directory(root.resolve("inference").toFile())
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        process = pb.start();
        long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        try (HttpClient http = HttpClient.newHttpClient()) {
            while (System.nanoTime() < deadline) {
                if (!process.isAlive()) throw new IllegalStateException("vlmserve exited: " + Files.readString(log));
                try {
                    var r = http.send(HttpRequest.newBuilder(URI.create(baseUrl() + "/health")).build(), HttpResponse.BodyHandlers.ofString());
                    if (r.statusCode() == 200) return;
                } catch (IOException notYet) {
                    // starting
                }
                Thread.sleep(200);
            }
        }
        throw new IllegalStateException("vlmserve not healthy in time: " + Files.readString(log));
    }

    public String baseUrl() {
        return "http://127.0.0.1:" + port;
    }

    /** vlmserve_requests_finished_total from /metrics: how many chat completions the server answered. */
    public long requestsFinished() throws Exception {
        return counter("vlmserve_requests_finished_total");
    }

    /** A counter of the server's /metrics, e.g. vlmserve_requests_aborted_total. */
    public long counter(String name) throws Exception {
        try (HttpClient http = HttpClient.newHttpClient()) {
            String text = http.send(HttpRequest.newBuilder(URI.create(baseUrl() + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + "\\s+([0-9.e+]+)$").matcher(text);
            if (!m.find()) throw new IllegalStateException("no " + name + " in /metrics:\n" + text);
            return (long) Double.parseDouble(m.group(1));
        }
    }

    /** SIGKILL: the server vanishes mid-request, as in a crash. */
    public void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor();
    }

    @Override
    public void close() throws InterruptedException {
        if (process != null && process.isAlive()) {
            process.destroy();
            if (!process.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) process.destroyForcibly().waitFor();
        }
    }
}
