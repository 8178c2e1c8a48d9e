package io.vlmbatch.inference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The client's endpoint pool against real HTTP servers on loopback (each answers like an OpenAI server). */
class EndpointPoolTest {
    private static final String OK = """
            {"id":"c1","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"a cat"},"finish_reason":"stop"}]}""";
    private static final String MODELS = "{\"data\":[{\"id\":\"m\"}]}";

    private final List<HttpServer> servers = new ArrayList<>();
    private final CountDownLatch never = new CountDownLatch(1);

    /** A server that answers (after delayMs), or that never answers anything once stalled. */
    private String serve(AtomicInteger answered, long delayMs, boolean stalled) throws IOException {
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/v1/chat/completions", ex -> {
            ex.getRequestBody().readAllBytes();
            pause(stalled, delayMs);
            answered.incrementAndGet();
            respond(ex, OK);
        });
        server.createContext("/v1/models", ex -> {
            pause(stalled, 0);
            respond(ex, MODELS);
        });
        server.start();
        servers.add(server);
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    private void pause(boolean stalled, long ms) {
        try {
            if (stalled) never.await();
            else Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void respond(HttpExchange ex, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().add("Content-Type", "application/json");
        ex.sendResponseHeaders(200, b.length);
        ex.getResponseBody().write(b);
        ex.close();
    }

    @AfterEach
    void stop() {
        never.countDown();
        servers.forEach(s -> s.stop(0));
    }

    private static ChatRequest about(String image) {
        return new ChatRequest("m", image, "Describe.", 8, null, null, null, List.of());
    }

    private static String deadUrl() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return "http://127.0.0.1:" + s.getLocalPort();
        }
    }

    /** No retries: whatever the pool does for an endpoint that is gone must not need them. */
    private static OpenAiClient client(List<String> urls, Duration timeout, Duration downAfter) {
        return new OpenAiClient(urls, u -> false, null, null, timeout, 0, Duration.ofMillis(5), 64, downAfter);
    }

    @Test
    void requestsSpreadOverTheEndpointsAndTheTasksOfOneImageStayTogether() throws Exception {
        AtomicInteger a = new AtomicInteger(), b = new AtomicInteger();
        try (OpenAiClient client = client(List.of(serve(a, 50, false), serve(b, 50, false)), Duration.ofSeconds(10), Duration.ofSeconds(10));
             ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<ChatResult>> answers = new ArrayList<>();
            List<String> images = new ArrayList<>();
            for (int i = 0; i < 20; i++) images.add(new String("data:image/jpeg;base64,IMG" + i)); // distinct objects
            for (String image : images) {
                for (int task = 0; task < 3; task++) answers.add(threads.submit(() -> client.complete(about(image))));
            }
            for (Future<ChatResult> f : answers) assertThat(f.get().ok()).isTrue();
            assertThat(a.get() + b.get()).isEqualTo(60);
            assertThat(a.get()).as("both endpoints get work").isPositive();
            assertThat(b.get()).as("both endpoints get work").isPositive();
            // tasks of one image in flight together went to one endpoint: each endpoint got whole images
            assertThat(a.get() % 3).isZero();
            assertThat(b.get() % 3).isZero();
            // the summary counts what each endpoint really served (the split need not be even: fewest in flight
            // decides, and 24 / 36 was seen under load)
            assertThat(client.endpointSummary()).contains(a.get() + " requests, 0 errors", b.get() + " requests, 0 errors")
                    .contains("mean ");
        }
    }

    @Test
    void aDeadEndpointInTheListIsTakenOutAndTheOthersDoTheWork() throws Exception {
        AtomicInteger live = new AtomicInteger();
        String dead = deadUrl();
        try (OpenAiClient client = client(List.of(dead, serve(live, 0, false)), Duration.ofSeconds(10), Duration.ofSeconds(10))) {
            for (int i = 0; i < 10; i++) assertThat(client.complete(about("data:image/jpeg;base64,X" + i)).ok()).isTrue();
            assertThat(live.get()).isEqualTo(10);
            assertThat(client.retryCount()).as("the one attempt that found the dead endpoint").isEqualTo(1);
            Endpoint d = client.endpoints().getFirst();
            assertThat(d.up()).isFalse();
            assertThat(d.downReason()).contains("ConnectException");
            assertThat(client.endpointSummary()).contains(dead + ": 1 requests, 1 errors, down");
        }
    }

    @Test
    void anEndpointThatStopsAnsweringIsTakenOutAndItsRequestsGoElsewhere() throws Exception {
        AtomicInteger hungAnswered = new AtomicInteger(), live = new AtomicInteger();
        String hung = serve(hungAnswered, 0, true);
        // a long request timeout: only the health check can get a request off the hung server in time
        try (OpenAiClient client = client(List.of(hung, serve(live, 0, false)), Duration.ofMinutes(10), Duration.ofSeconds(30));
             ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<ChatResult>> answers = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                String image = "data:image/jpeg;base64,H" + i;
                answers.add(threads.submit(() -> client.complete(about(image))));
            }
            for (Future<ChatResult> f : answers) assertThat(f.get().ok()).isTrue();
            assertThat(live.get()).isEqualTo(8);
            assertThat(hungAnswered.get()).isZero();
            assertThat(client.endpoints().getFirst().up()).isFalse();
            assertThat(client.endpoints().getFirst().downReason()).contains("health checks");
            assertThat(client.retryCount()).as("each request at most once more").isLessThanOrEqualTo(8);
        }
    }

    @Test
    void aPoolWhoseOnlyServerHangsIsDeclaredDownInBoundedTime() throws Exception {
        String hung = serve(new AtomicInteger(), 0, true);
        try (OpenAiClient client = client(List.of(hung), Duration.ofMinutes(10), Duration.ofSeconds(2))) {
            assertThatThrownBy(() -> client.complete(about("data:image/jpeg;base64,Z")))
                    .isInstanceOf(InferenceUnavailableException.class)
                    .hasMessageContaining("no inference endpoint answered for 2 s")
                    .hasMessageContaining("no answer to two health checks in a row");
        }
    }

    @Test
    void anEndpointIsPutBackWhenItAnswersItsHealthCheckAgain() throws Exception {
        AtomicInteger answered = new AtomicInteger();
        String url = deadUrl();
        int port = Integer.parseInt(url.substring(url.lastIndexOf(':') + 1));
        try (OpenAiClient client = client(List.of(url), Duration.ofSeconds(10), Duration.ofSeconds(60));
             ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            Future<ChatResult> waiting = threads.submit(() -> client.complete(about("data:image/jpeg;base64,B")));
            while (client.endpoints().getFirst().up()) Thread.sleep(20);
            HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
            server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
            server.createContext("/v1/chat/completions", ex -> {
                ex.getRequestBody().readAllBytes();
                answered.incrementAndGet();
                respond(ex, OK);
            });
            server.createContext("/v1/models", ex -> respond(ex, MODELS));
            server.start();
            servers.add(server);
            assertThat(waiting.get().ok()).isTrue();
            assertThat(answered.get()).isEqualTo(1);
            assertThat(client.endpoints().getFirst().up()).isTrue();
        }
    }
}
