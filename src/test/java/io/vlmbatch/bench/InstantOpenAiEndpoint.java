package io.vlmbatch.bench;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An OpenAI chat-completions endpoint that answers at once, so that a benchmark measures the pipeline
 * and nothing else. It reads every request body in full (as a server must), answers a choice request
 * with its first choice, and counts the CPU time its own threads spend, to subtract it.
 */
public final class InstantOpenAiEndpoint implements AutoCloseable {
    private static final Pattern FIRST_CHOICE = Pattern.compile("\"choice\"\\s*:\\s*\\[\\s*\"([^\"]*)\"");

    private final HttpServer server;
    private final ExecutorService threads = Executors.newFixedThreadPool(64); // platform threads: CPU time is measurable
    private final ThreadMXBean mx = ManagementFactory.getThreadMXBean();
    public final AtomicLong requests = new AtomicLong();
    final AtomicLong cpuNanos = new AtomicLong();

    public InstantOpenAiEndpoint() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 1024);
        server.setExecutor(threads);
        server.createContext("/v1/models", ex -> respond(ex, "{\"object\":\"list\",\"data\":[{\"id\":\"instant\",\"object\":\"model\"}]}"));
        server.createContext("/v1/chat/completions", this::complete);
        server.start();
    }

    public String baseUrl() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    private void complete(HttpExchange ex) throws IOException {
        long start = mx.getCurrentThreadCpuTime();
        String body = new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
        Matcher m = FIRST_CHOICE.matcher(body);
        String answer = m.find() ? m.group(1) : "An instant answer about the image.";
        respond(ex, """
                {"id":"x","object":"chat.completion","model":"instant","choices":[{"index":0,
                "message":{"role":"assistant","content":"%s"},"finish_reason":"stop"}],
                "usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}""".formatted(answer));
        requests.incrementAndGet();
        cpuNanos.addAndGet(mx.getCurrentThreadCpuTime() - start);
    }

    private static void respond(HttpExchange ex, String json) throws IOException {
        byte[] b = json.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().add("Content-Type", "application/json");
        ex.sendResponseHeaders(200, b.length);
        ex.getResponseBody().write(b);
        ex.close();
    }

    @Override
    public void close() {
        server.stop(0);
        threads.shutdownNow();
    }
}
