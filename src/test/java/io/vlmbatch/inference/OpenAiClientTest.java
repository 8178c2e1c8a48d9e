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
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The client's wire format and retry policy, against a real HTTP server whose answers the test
 * scripts (the real vlmserve cannot be made to answer 503 or 429 on cue).
 */
class OpenAiClientTest {
    private static final String OK = """
            {"id":"c1","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"a cat"},"finish_reason":"stop"}],
             "usage":{"prompt_tokens":12,"completion_tokens":3}}""";

    private HttpServer server;
    private final List<String> bodies = new CopyOnWriteArrayList<>();

    private String serve(List<Integer> statuses) throws IOException {
        AtomicInteger call = new AtomicInteger();
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/v1/chat/completions", ex -> {
            bodies.add(new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
            int i = call.getAndIncrement();
            int status = i < statuses.size() ? statuses.get(i) : 200;
            respond(ex, status, status == 200 ? OK : "{\"error\":{\"message\":\"status " + status + "\"}}");
        });
        server.start();
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    private static void respond(HttpExchange ex, int status, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().add("Content-Type", "application/json");
        ex.sendResponseHeaders(status, b.length);
        ex.getResponseBody().write(b);
        ex.close();
    }

    @AfterEach
    void stop() {
        if (server != null) server.stop(0);
    }

    private static ChatRequest request(List<String> choices) {
        return new ChatRequest("glm-4v-9b", "data:image/jpeg;base64,AAAA", "Describe.", 32, 0.0, null, 5L, choices);
    }

    @Test
    void sendsImageThenTextAndTheChoiceConstraint() throws Exception {
        String url = serve(List.of());
        try (OpenAiClient client = new OpenAiClient(url + "/v1", null, null, Duration.ofSeconds(5), 0, Duration.ofMillis(1), 4)) {
            ChatResult r = client.complete(request(List.of("photo", "chart")));
            assertThat(r.ok()).isTrue();
            assertThat(r.answer()).isEqualTo("a cat");
            assertThat(r.promptTokens()).isEqualTo(12);
            assertThat(r.attempts()).isEqualTo(1);
        }
        JsonNode body = JsonMapper.builder().build().readTree(bodies.getFirst());
        JsonNode content = body.path("messages").path(0).path("content");
        assertThat(content.path(0).path("type").asString()).isEqualTo("image_url");
        assertThat(content.path(0).path("image_url").path("url").asString()).startsWith("data:image/jpeg;base64,");
        assertThat(content.path(1).path("text").asString()).isEqualTo("Describe.");
        assertThat(body.path("structured_outputs").path("choice").toString()).isEqualTo("[\"photo\",\"chart\"]");
        assertThat(body.path("max_tokens").asInt()).isEqualTo(32);
        assertThat(body.path("seed").asLong()).isEqualTo(5L);
        assertThat(body.has("top_p")).isFalse();
    }

    @Test
    void retriesOverloadAndServerErrorsThenSucceeds() throws Exception {
        String url = serve(List.of(503, 429, 500));
        try (OpenAiClient client = new OpenAiClient(url, null, null, Duration.ofSeconds(5), 3, Duration.ofMillis(5), 4)) {
            ChatResult r = client.complete(request(List.of()));
            assertThat(r.ok()).isTrue();
            assertThat(r.attempts()).isEqualTo(4);
            assertThat(client.retryCount()).isEqualTo(3);
        }
    }

    @Test
    void aClientErrorIsAFailedAnswerNotARetry() throws Exception {
        String url = serve(List.of(400));
        try (OpenAiClient client = new OpenAiClient(url, null, null, Duration.ofSeconds(5), 3, Duration.ofMillis(5), 4)) {
            ChatResult r = client.complete(request(List.of()));
            assertThat(r.ok()).isFalse();
            assertThat(r.error()).startsWith("HTTP 400").contains("status 400");
            assertThat(bodies).hasSize(1);
        }
    }

    @Test
    void anUnreachableServerIsDeclaredDownAfterTheBoundedTimeWithoutSpendingRetries() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        try (OpenAiClient client = new OpenAiClient(List.of("http://127.0.0.1:" + port), u -> false, null, null,
                Duration.ofSeconds(2), 0, Duration.ofMillis(5), 4, Duration.ofSeconds(2))) {
            assertThatThrownBy(() -> client.complete(request(List.of())))
                    .isInstanceOf(InferenceUnavailableException.class)
                    .hasMessageContaining("no inference endpoint answered for 2 s")
                    .hasMessageContaining("ConnectException");
            assertThat(client.retryCount()).as("an endpoint out of the pool is waited for, not tried again and again").isEqualTo(1);
            assertThat(client.endpoints().getFirst().up()).isFalse();
        }
    }

    @Test
    void backoffGrowsAndIsCapped() {
        try (OpenAiClient client = new OpenAiClient("http://127.0.0.1:1", null, null, Duration.ofSeconds(1), 3, Duration.ofMillis(100), 1)) {
            assertThat(client.backoff(1).toMillis()).isBetween(50L, 100L);
            assertThat(client.backoff(4).toMillis()).isBetween(400L, 800L);
            assertThat(client.backoff(30).toMillis()).isBetween(15_000L, 30_000L);
        }
        assertThat(OpenAiClient.apiBase("http://h:8000").toString()).isEqualTo("http://h:8000/v1/");
        assertThat(OpenAiClient.apiBase("http://h:8000/v1/").toString()).isEqualTo("http://h:8000/v1/");
        assertThat(OpenAiClient.apiBase(" http://h:8000/v1/// ").toString()).isEqualTo("http://h:8000/v1/");
        assertThat(OpenAiClient.apiBase("http://h:8000/openai").toString()).isEqualTo("http://h:8000/openai/v1/");
    }

    private String serveModels(String body) throws IOException {
        if (server == null) {
            server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
            server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
            server.start();
        }
        server.createContext("/v1/models", ex -> {
            bodies.add("auth=" + ex.getRequestHeaders().getFirst("Authorization"));
            respond(ex, 200, body);
        });
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    @Test
    void withoutAModelItAsksTheServerOnceAndSendsTheKey() throws Exception {
        String url = serveModels("{\"data\":[{\"id\":\"glm-4v-9b\"},{\"id\":\"other\"}]}");
        try (OpenAiClient client = new OpenAiClient(url, "s3cret", null, Duration.ofSeconds(5), 0, Duration.ofMillis(1), 4)) {
            assertThat(client.model()).isEqualTo("glm-4v-9b");
            assertThat(client.model()).isEqualTo("glm-4v-9b");
            assertThat(client.healthy()).isTrue();
        }
        assertThat(bodies).containsExactly("auth=Bearer s3cret", "auth=Bearer s3cret");
        try (OpenAiClient named = new OpenAiClient(url, null, "mine", Duration.ofSeconds(5), 0, Duration.ofMillis(1), 4)) {
            assertThat(named.model()).isEqualTo("mine");
        }
    }

    @Test
    void aServerListingNoModelsOrGarbageIsUnavailable() throws Exception {
        String url = serveModels("{\"data\":[]}");
        try (OpenAiClient client = new OpenAiClient(url, null, null, Duration.ofSeconds(5), 0, Duration.ofMillis(1), 4)) {
            assertThatThrownBy(client::model).isInstanceOf(InferenceUnavailableException.class).hasMessageContaining("lists no models");
        }
        server.removeContext("/v1/models");
        serveModels("<html>not json");
        try (OpenAiClient client = new OpenAiClient(url, null, null, Duration.ofSeconds(5), 0, Duration.ofMillis(1), 4)) {
            assertThatThrownBy(client::model).isInstanceOf(InferenceUnavailableException.class).hasMessageContaining("is not JSON");
        }
    }

    /** A streaming endpoint: the first {@code failures} calls answer 503, then the events are sent as they are. */
    private String serveStream(int failures, List<String> events) throws IOException {
        AtomicInteger call = new AtomicInteger();
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/v1/chat/completions", ex -> {
            bodies.add(new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
            if (call.getAndIncrement() < failures) {
                respond(ex, 503, "{\"error\":{\"message\":\"busy\"}}");
                return;
            }
            ex.getResponseHeaders().add("Content-Type", "text/event-stream");
            ex.sendResponseHeaders(200, 0);
            for (String e : events) {
                ex.getResponseBody().write(("data: " + e + "\n\n").getBytes(StandardCharsets.UTF_8));
                ex.getResponseBody().flush();
            }
            ex.close();
        });
        server.start();
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    private static String delta(String text) {
        return "{\"choices\":[{\"index\":0,\"delta\":{\"content\":" + JsonMapper.builder().build().writeValueAsString(text) + "}}]}";
    }

    @Test
    void streamsPiecesOfAConversationAfterRetryingOverload() throws Exception {
        String url = serveStream(1, List.of(delta("a "), delta("cat\n\"ok\""), "[DONE]", delta("after done")));
        List<String> pieces = new CopyOnWriteArrayList<>();
        ChatRequest ask = new ChatRequest(null, "data:image/png;base64,AAAA", List.of(new ChatRequest.Turn("What?", "A cat.")),
                "Which colour?", 16, null, null, null, List.of("black", "white"), null);
        try (OpenAiClient client = new OpenAiClient(url, null, "m", Duration.ofSeconds(5), 2, Duration.ofMillis(5), 4)) {
            assertThat(client.stream(ask, pieces::add)).isEqualTo("a cat\n\"ok\"");
            assertThat(client.retryCount()).isEqualTo(1);
        }
        assertThat(pieces).containsExactly("a ", "cat\n\"ok\"");
        JsonNode body = JsonMapper.builder().build().readTree(bodies.getLast());
        assertThat(body.path("stream").asBoolean()).isTrue();
        assertThat(body.path("model").asString()).isEqualTo("m");
        JsonNode messages = body.path("messages");
        assertThat(messages.size()).isEqualTo(3);
        assertThat(messages.path(0).path("content").path(0).path("image_url").path("url").asString()).startsWith("data:image/png");
        assertThat(messages.path(0).path("content").path(1).path("text").asString()).isEqualTo("What?");
        assertThat(messages.path(1).path("role").asString()).isEqualTo("assistant");
        assertThat(messages.path(1).path("content").asString()).isEqualTo("A cat.");
        assertThat(messages.path(2).path("content").asString()).isEqualTo("Which colour?");
        assertThat(body.path("structured_outputs").path("choice").toString()).isEqualTo("[\"black\",\"white\"]");
    }

    @Test
    void anErrorEventOrGarbageInTheStreamIsAnError() throws Exception {
        String url = serveStream(0, List.of(delta("par"), "{\"error\":{\"message\":\"the image is too large\"}}"));
        try (OpenAiClient client = new OpenAiClient(url, null, "m", Duration.ofSeconds(5), 0, Duration.ofMillis(5), 4)) {
            assertThatThrownBy(() -> client.stream(request(List.of()), p -> {})).hasMessage("the image is too large");
        }
        server.stop(0);
        url = serveStream(0, List.of("<html>"));
        try (OpenAiClient client = new OpenAiClient(url, null, "m", Duration.ofSeconds(5), 0, Duration.ofMillis(5), 4)) {
            assertThatThrownBy(() -> client.stream(request(List.of()), p -> {})).hasMessageContaining("not JSON: <html>");
        }
        server.stop(0);
        url = serve(List.of(400));
        try (OpenAiClient client = new OpenAiClient(url, null, "m", Duration.ofSeconds(5), 0, Duration.ofMillis(5), 4)) {
            assertThatThrownBy(() -> client.stream(request(List.of()), p -> {})).hasMessageContaining("HTTP 400").hasMessageContaining("status 400");
        }
    }

    /** Answers like vLLM started without --scheduling-policy priority: a request carrying a priority is refused. */
    private String serveWithoutPriorities(AtomicInteger notAboutPriority) throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/v1/chat/completions", ex -> {
            String body = new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
            bodies.add(body);
            JsonNode json = JsonMapper.builder().build().readTree(body);
            if (notAboutPriority.getAndDecrement() > 0) {
                respond(ex, 400, "{\"object\":\"error\",\"message\":\"max_tokens is too large\",\"code\":400}");
            } else if (json.has("priority")) {
                respond(ex, 400, "{\"object\":\"error\",\"message\":\"Got priority " + json.path("priority").asInt()
                        + " but Priority scheduling is not enabled.\",\"type\":\"BadRequestError\",\"param\":null,\"code\":400}");
            } else if (json.path("stream").asBoolean()) {
                ex.getResponseHeaders().add("Content-Type", "text/event-stream");
                ex.sendResponseHeaders(200, 0);
                ex.getResponseBody().write(("data: " + delta("a cat") + "\n\ndata: [DONE]\n\n").getBytes(StandardCharsets.UTF_8));
                ex.close();
            } else {
                respond(ex, 200, OK);
            }
        });
        server.start();
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    private List<JsonNode> sentBodies() {
        return bodies.stream().map(b -> JsonMapper.builder().build().readTree(b)).toList();
    }

    @Test
    void aPriorityIsSentUntilTheServerRefusesItThenLeftOutOfEveryRequest() throws Exception {
        String url = serveWithoutPriorities(new AtomicInteger());
        try (OpenAiClient client = new OpenAiClient(url, null, "m", Duration.ofSeconds(5), 0, Duration.ofMillis(5), 4)) {
            ChatResult first = client.complete(request(List.of()).withPriority(-1));
            assertThat(first.ok()).as(first.error()).isTrue();
            assertThat(first.answer()).isEqualTo("a cat");
            assertThat(first.attempts()).isEqualTo(2);
            assertThat(client.stream(request(List.of()).withPriority(-1), p -> {})).isEqualTo("a cat");
            assertThat(client.complete(request(List.of()).withPriority(5)).ok()).isTrue();
        }
        List<JsonNode> sent = sentBodies();
        assertThat(sent).hasSize(4);
        assertThat(sent.get(0).path("priority").asInt()).isEqualTo(-1);
        assertThat(sent.subList(1, 4)).allSatisfy(b -> assertThat(b.has("priority")).isFalse());
        assertThat(sent.get(2).path("stream").asBoolean()).isTrue();
    }

    @Test
    void aStreamRefusedForItsPriorityIsStreamedWithoutIt() throws Exception {
        String url = serveWithoutPriorities(new AtomicInteger());
        List<String> pieces = new CopyOnWriteArrayList<>();
        try (OpenAiClient client = new OpenAiClient(url, null, "m", Duration.ofSeconds(5), 0, Duration.ofMillis(5), 4)) {
            assertThat(client.stream(request(List.of()).withPriority(-1), pieces::add)).isEqualTo("a cat");
        }
        assertThat(pieces).containsExactly("a cat");
        assertThat(sentBodies()).extracting(b -> b.has("priority")).containsExactly(true, false);
    }

    @Test
    void otherRefusalsOfARequestWithAPriorityStayFailedAnswersAndTheDefaultPriorityIsNeverSent() throws Exception {
        String url = serveWithoutPriorities(new AtomicInteger(2));
        try (OpenAiClient client = new OpenAiClient(url, null, "m", Duration.ofSeconds(5), 3, Duration.ofMillis(5), 4)) {
            ChatResult r = client.complete(request(List.of()).withPriority(-1));
            assertThat(r.ok()).isFalse();
            assertThat(r.error()).startsWith("HTTP 400").contains("max_tokens is too large");
            assertThatThrownBy(() -> client.stream(request(List.of()).withPriority(-1), p -> {}))
                    .hasMessageContaining("HTTP 400").hasMessageContaining("max_tokens is too large");
            assertThat(client.complete(request(List.of()).withPriority(0)).ok()).isTrue();
            // the other refusals did not stop priorities: this one is sent with it, refused for it, and sent again
            assertThat(client.complete(request(List.of()).withPriority(-1)).ok()).isTrue();
        }
        assertThat(sentBodies()).extracting(b -> b.has("priority")).containsExactly(true, true, false, true, false);
    }
}
