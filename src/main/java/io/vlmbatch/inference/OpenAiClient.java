package io.vlmbatch.inference;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Iterator;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * The one client of an OpenAI-compatible chat-completions API (our vlmserve, vLLM, SGLang, LMDeploy...),
 * for the batch run and the playground alike: URL normalisation, model discovery, the request body,
 * retries and streaming. Thread-safe: callers run many requests at once on virtual threads; a semaphore
 * bounds how many are on the wire. Connection errors, timeouts, 429 and 5xx are retried with exponential
 * backoff and jitter; any other 4xx is an answer about this request and comes back as a failed result.
 */
public final class OpenAiClient implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(OpenAiClient.class);
    private static final Duration MAX_BACKOFF = Duration.ofSeconds(30);

    private final URI base;
    private final String apiKey;
    private final String configuredModel;
    private final Duration timeout;
    private final int retries;
    private final Duration backoff;
    private final Semaphore inFlight;
    private final int concurrency;
    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    private final HttpClient http;
    private final ObjectMapper json = JsonMapper.builder().build();
    private final AtomicLong retryCount = new AtomicLong();
    private final AtomicLong requestCount = new AtomicLong();
    private volatile String model;

    /**
     * @param model   what to ask for; null = the first model the server lists, looked up on first use
     * @param timeout for one attempt of one request (a streamed answer: until its last piece)
     */
    public OpenAiClient(String baseUrl, String apiKey, String model, Duration timeout, int retries, Duration backoff,
                        int concurrency) {
        this.base = apiBase(baseUrl);
        this.apiKey = apiKey;
        this.configuredModel = model;
        this.timeout = timeout;
        this.retries = retries;
        this.backoff = backoff;
        this.inFlight = new Semaphore(concurrency);
        this.concurrency = concurrency;
        this.http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1) // uvicorn and most inference servers speak HTTP/1.1 only
                .connectTimeout(Duration.ofSeconds(10))
                .executor(executor)
                .build();
    }

    /** "http://h:8000", "http://h:8000/" and "http://h:8000/v1" all mean the same API root. */
    static URI apiBase(String baseUrl) {
        String b = baseUrl.strip().replaceAll("/+$", "");
        if (!b.endsWith("/v1")) b = b + "/v1";
        return URI.create(b + "/");
    }

    public URI base() { return base; }

    public long retryCount() { return retryCount.get(); }

    /** Chat completions asked for (each counted once, however many attempts it took). */
    public long requestCount() { return requestCount.get(); }

    /** Requests on the wire now (for the serve command's metrics). */
    public int inFlight() { return concurrency - inFlight.availablePermits(); }

    /** The model asked for: the configured one, else the first the server lists (asked once). */
    public String model() throws InterruptedException {
        if (configuredModel != null) return configuredModel;
        String m = model;
        if (m == null) {
            synchronized (this) {
                if (model == null) model = firstModel();
                m = model;
            }
        }
        return m;
    }

    /** The first model the server lists. */
    public String firstModel() throws InterruptedException {
        HttpResponse<String> r = send(HttpRequest.newBuilder(base.resolve("models")).GET(), "GET /v1/models").response;
        if (r.statusCode() != 200) throw new InferenceUnavailableException("GET " + base.resolve("models") + " answered HTTP " + r.statusCode(), null);
        JsonNode data;
        try {
            data = json.readTree(r.body()).path("data");
        } catch (JacksonException e) {
            throw new InferenceUnavailableException("GET " + base.resolve("models") + " is not JSON: " + snippet(r.body()), e);
        }
        if (!data.isArray() || data.isEmpty() || !data.get(0).path("id").isString()) {
            throw new InferenceUnavailableException("the server at " + base + " lists no models", null);
        }
        return data.get(0).path("id").asString();
    }

    /** The server answers GET /v1/models with 200 within 5 s (one attempt, for health checks). */
    public boolean healthy() {
        try {
            HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve("models")).timeout(Duration.ofSeconds(5));
            if (apiKey != null) b.header("Authorization", "Bearer " + apiKey);
            return http.send(b.build(), HttpResponse.BodyHandlers.discarding()).statusCode() == 200;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    public ChatResult complete(ChatRequest request) throws InterruptedException {
        requestCount.incrementAndGet();
        String body = json.writeValueAsString(body(request, false));
        long start = System.nanoTime();
        Sent<String> sent = send(post(body), "POST /v1/chat/completions");
        long ms = (System.nanoTime() - start) / 1_000_000;
        HttpResponse<String> r = sent.response;
        if (r.statusCode() / 100 != 2) {
            return ChatResult.failed("HTTP " + r.statusCode() + " from the inference server: " + snippet(r.body()), ms, sent.attempts);
        }
        try {
            JsonNode root = json.readTree(r.body());
            JsonNode content = root.path("choices").path(0).path("message").path("content");
            if (!content.isString()) {
                return ChatResult.failed("the response has no choices[0].message.content: " + snippet(r.body()), ms, sent.attempts);
            }
            JsonNode usage = root.path("usage");
            return new ChatResult(content.asString(), null, root.path("model").asString(null),
                    usage.has("prompt_tokens") ? usage.get("prompt_tokens").asInt() : null,
                    usage.has("completion_tokens") ? usage.get("completion_tokens").asInt() : null,
                    ms, sent.attempts);
        } catch (JacksonException e) {
            return ChatResult.failed("the response is not JSON: " + snippet(r.body()), ms, sent.attempts);
        }
    }

    /**
     * Asks with {@code stream: true} and hands each piece of the answer to {@code piece} as it arrives
     * (server-sent events); returns the whole answer. Failures before the first piece are retried like
     * complete()'s; an error status or an error event is an exception whose message quotes the server.
     * A stream holds a slot of the concurrency bound only until its headers arrive (one user's question
     * in the playground, not a batch's flood).
     */
    public String stream(ChatRequest request, Consumer<String> piece) throws InterruptedException {
        requestCount.incrementAndGet();
        String body = json.writeValueAsString(body(request, true));
        Sent<Stream<String>> sent = send(post(body), "POST /v1/chat/completions (stream)", HttpResponse.BodyHandlers.ofLines(),
                lines -> String.join(" ", lines.limit(20).toList()));
        StringBuilder answer = new StringBuilder();
        try (Stream<String> lines = sent.response.body()) {
            if (sent.response.statusCode() != 200) {
                throw new IllegalStateException("the inference server answered HTTP " + sent.response.statusCode() + ": "
                        + snippet(String.join(" ", lines.limit(20).toList())));
            }
            Iterator<String> it = lines.iterator();
            while (true) {
                String line;
                try {
                    if (!it.hasNext()) break;
                    line = it.next();
                } catch (UncheckedIOException e) {
                    throw new InferenceUnavailableException("the answer stream from " + base + " broke off: " + e.getCause(), e.getCause());
                }
                if (!line.startsWith("data:")) continue;
                String data = line.substring(5).strip();
                if (data.equals("[DONE]")) break;
                JsonNode event;
                try {
                    event = json.readTree(data);
                } catch (JacksonException e) {
                    throw new IllegalStateException("the inference server sent an event that is not JSON: " + snippet(data));
                }
                if (event.has("error")) throw new IllegalStateException(event.path("error").path("message").asString(snippet(data)));
                String text = event.path("choices").path(0).path("delta").path("content").asString("");
                if (!text.isEmpty()) {
                    answer.append(text);
                    piece.accept(text);
                }
            }
        }
        return answer.toString();
    }

    private HttpRequest.Builder post(String body) {
        return HttpRequest.newBuilder(base.resolve("chat/completions"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
    }

    /** The earlier turns, then the image and the question. The image leads its message so that all tasks of one image share a prefix. */
    private ObjectNode body(ChatRequest q, boolean stream) throws InterruptedException {
        ObjectNode b = json.createObjectNode();
        b.put("model", q.model() != null ? q.model() : model());
        ArrayNode messages = b.putArray("messages");
        for (int i = 0; i <= q.earlier().size(); i++) {
            String text = i < q.earlier().size() ? q.earlier().get(i).question() : q.prompt();
            ObjectNode user = messages.addObject().put("role", "user");
            if (i == 0) {
                // Image first, then the question: all tasks of one image share the same prefix, which
                // servers with prefix caching compute once.
                ArrayNode content = user.putArray("content");
                content.addObject().put("type", "image_url").putObject("image_url").put("url", q.imageDataUrl());
                content.addObject().put("type", "text").put("text", text);
            } else {
                user.put("content", text);
            }
            if (i < q.earlier().size()) messages.addObject().put("role", "assistant").put("content", q.earlier().get(i).answer());
        }
        b.put("max_tokens", q.maxTokens());
        if (q.temperature() != null) b.put("temperature", q.temperature());
        if (q.topP() != null) b.put("top_p", q.topP());
        if (q.seed() != null) b.put("seed", q.seed());
        if (!q.choices().isEmpty()) {
            ArrayNode choice = b.putObject("structured_outputs").putArray("choice");
            q.choices().forEach(choice::add);
        }
        if (stream) b.put("stream", true);
        return b;
    }

    private record Sent<T>(HttpResponse<T> response, int attempts) {}

    private Sent<String> send(HttpRequest.Builder builder, String what) throws InterruptedException {
        return send(builder, what, HttpResponse.BodyHandlers.ofString(), OpenAiClient::snippet);
    }

    /** @param describe reads the body of a response that will be retried, for the log and the last error */
    private <T> Sent<T> send(HttpRequest.Builder builder, String what, HttpResponse.BodyHandler<T> handler,
                             Function<T, String> describe) throws InterruptedException {
        builder.timeout(timeout);
        if (apiKey != null) builder.header("Authorization", "Bearer " + apiKey);
        HttpRequest request = builder.build();
        String lastError = null;
        Throwable lastCause = null;
        for (int attempt = 1; ; attempt++) {
            Duration wait = null;
            inFlight.acquire();
            try {
                HttpResponse<T> r = http.send(request, handler);
                int s = r.statusCode();
                if (s != 429 && s < 500) return new Sent<>(r, attempt);
                lastError = "HTTP " + s + ": " + snippet(describe.apply(r.body()));
                lastCause = null;
                wait = r.headers().firstValue("Retry-After").flatMap(OpenAiClient::seconds).orElse(null);
            } catch (IOException | UncheckedIOException e) {
                lastError = e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
                lastCause = e;
            } finally {
                inFlight.release();
            }
            if (attempt > retries) {
                throw new InferenceUnavailableException(what + " at " + base + " failed " + attempt
                        + " times; last error: " + lastError, lastCause);
            }
            retryCount.incrementAndGet();
            if (wait == null) wait = backoff(attempt);
            // Logged, not hidden: a retry after a timeout may have been answered by the server too.
            log.warn("{} failed ({}), retry {} of {} in {} ms", what, lastError, attempt, retries, wait.toMillis());
            Thread.sleep(wait);
        }
    }

    /** backoff * 2^(attempt-1), capped, with jitter so that many waiting requests don't return at once. */
    Duration backoff(int attempt) {
        long base = backoff.toMillis() << Math.min(attempt - 1, 20);
        long capped = Math.min(base, MAX_BACKOFF.toMillis());
        return Duration.ofMillis(capped / 2 + ThreadLocalRandom.current().nextLong(capped / 2 + 1));
    }

    private static java.util.Optional<Duration> seconds(String header) {
        try {
            long s = Long.parseLong(header.trim());
            return java.util.Optional.of(Duration.ofSeconds(Math.min(Math.max(s, 0), MAX_BACKOFF.toSeconds())));
        } catch (NumberFormatException e) {
            return java.util.Optional.empty();
        }
    }

    private static String snippet(String body) {
        if (body == null) return "";
        String s = body.strip().replaceAll("\\s+", " ");
        return s.length() > 300 ? s.substring(0, 300) + "..." : s;
    }

    @Override
    public void close() {
        http.close();
        executor.close();
    }
}
