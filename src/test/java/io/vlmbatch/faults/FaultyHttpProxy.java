package io.vlmbatch.faults;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

/**
 * An HTTP proxy in front of a real S3-compatible server that, while {@code failing} says so, answers
 * requests itself with S3's throttling (503 SlowDown) and server errors (500 InternalError), in turn,
 * instead of passing them on. Counts what it did, and the SDK's retries (its amz-sdk-request header
 * says which attempt a request is).
 */
final class FaultyHttpProxy implements AutoCloseable {
    private static final Set<String> HOP = Set.of("host", "connection", "content-length", "transfer-encoding", "expect", "upgrade",
            "keep-alive");
    private final HttpServer server;
    private final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private final String target;
    private final BooleanSupplier failing;
    final AtomicLong requests = new AtomicLong();
    final AtomicLong slowDowns = new AtomicLong();
    final AtomicLong internalErrors = new AtomicLong();
    final AtomicLong retried = new AtomicLong();
    final AtomicLong maxAttempt = new AtomicLong(1);

    FaultyHttpProxy(String target, BooleanSupplier failing) throws IOException {
        this.target = target;
        this.failing = failing;
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 64);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/", this::handle);
        server.start();
    }

    String endpoint() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            requests.incrementAndGet();
            String attempt = ex.getRequestHeaders().getFirst("amz-sdk-request");
            if (attempt != null) {
                java.util.regex.Matcher m = java.util.regex.Pattern.compile("attempt=(\\d+)").matcher(attempt);
                if (m.find()) {
                    long n = Long.parseLong(m.group(1));
                    if (n > 1) retried.incrementAndGet();
                    maxAttempt.accumulateAndGet(n, Math::max);
                }
            }
            byte[] body;
            try (InputStream in = ex.getRequestBody()) {
                body = in.readAllBytes();
            }
            if (failing.getAsBoolean()) {
                boolean slow = (slowDowns.get() + internalErrors.get()) % 2 == 0;
                (slow ? slowDowns : internalErrors).incrementAndGet();
                String code = slow ? "SlowDown" : "InternalError";
                byte[] xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code + "</Code><Message>"
                        + (slow ? "Please reduce your request rate." : "We encountered an internal error. Please try again.")
                        + "</Message></Error>").getBytes(StandardCharsets.UTF_8);
                ex.getResponseHeaders().set("Content-Type", "application/xml");
                boolean head = ex.getRequestMethod().equals("HEAD");
                ex.sendResponseHeaders(slow ? 503 : 500, head ? -1 : xml.length);
                if (!head) ex.getResponseBody().write(xml);
                return;
            }
            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(target + ex.getRequestURI().toString()))
                    .method(ex.getRequestMethod(), body.length == 0 ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(body));
            ex.getRequestHeaders().forEach((k, vs) -> {
                if (!HOP.contains(k.toLowerCase())) vs.forEach(v -> b.header(k, v));
            });
            HttpResponse<byte[]> r;
            try {
                r = client.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(e);
            }
            r.headers().map().forEach((k, vs) -> {
                if (!HOP.contains(k.toLowerCase()) && !k.startsWith(":")) vs.forEach(v -> ex.getResponseHeaders().add(k, v));
            });
            boolean empty = ex.getRequestMethod().equals("HEAD") || r.statusCode() == 204 || r.statusCode() == 304;
            if (empty) {
                r.headers().firstValue("content-length").ifPresent(v -> ex.getResponseHeaders().set("Content-Length", v));
                ex.sendResponseHeaders(r.statusCode(), -1);
            } else {
                ex.sendResponseHeaders(r.statusCode(), r.body().length == 0 ? -1 : r.body().length);
                try (OutputStream out = ex.getResponseBody()) {
                    out.write(r.body());
                }
            }
        }
    }

    @Override
    public void close() {
        server.stop(0);
        client.close();
    }
}
