package io.vlmbatch.inference;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * A client of the OpenAI chat-completions API (our vlmserve, vLLM, SGLang, LMDeploy...). Thread-safe:
 * callers run many requests at once on virtual threads; a semaphore bounds how many are on the wire.
 * Connection errors, timeouts, 429 and 5xx are retried with exponential backoff and jitter; any other
 * 4xx is an answer about this request and comes back as a failed result.
 */
public final class OpenAiClient implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(OpenAiClient.class);
    private static final Duration MAX_BACKOFF = Duration.ofSeconds(30);

    private final URI base;
    private final String apiKey;
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

    public OpenAiClient(String baseUrl, String apiKey, Duration timeout, int retries, Duration backoff, int concurrency) {
        this.base = apiBase(baseUrl);
        this.apiKey = apiKey;
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
        String b = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
        if (!b.endsWith("/v1")) b = b + "/v1";
        return URI.create(b + "/");
    }

    public URI base() { return base; }

    public long retryCount() { return retryCount.get(); }

    /** Chat completions asked for (each counted once, however many attempts it took). */
    public long requestCount() { return requestCount.get(); }

    /** Requests on the wire now (for the serve command's metrics). */
    public int inFlight() { return concurrency - inFlight.availablePermits(); }

    /** The first model the server lists: what to ask for when the job names none. */
    public String firstModel() throws InterruptedException {
        HttpResponse<String> r = send(HttpRequest.newBuilder(base.resolve("models")).GET(), "GET /v1/models").response;
        if (r.statusCode() != 200) throw new InferenceUnavailableException("GET " + base.resolve("models") + " answered HTTP " + r.statusCode(), null);
        JsonNode data = json.readTree(r.body()).path("data");
        if (!data.isArray() || data.isEmpty()) throw new InferenceUnavailableException("the server at " + base + " lists no models", null);
        return data.get(0).path("id").asString();
    }

    public ChatResult complete(ChatRequest request) throws InterruptedException {
        requestCount.incrementAndGet();
        String body = json.writeValueAsString(body(request));
        HttpRequest.Builder builder = HttpRequest.newBuilder(base.resolve("chat/completions"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
        long start = System.nanoTime();
        Sent sent = send(builder, "POST /v1/chat/completions");
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

    private ObjectNode body(ChatRequest q) {
        ObjectNode b = json.createObjectNode();
        if (q.model() != null) b.put("model", q.model());
        ArrayNode content = json.createArrayNode();
        // Image first, then the question: all tasks of one image share the same prefix, which servers
        // with prefix caching compute once.
        ObjectNode image = content.addObject().put("type", "image_url");
        image.putObject("image_url").put("url", q.imageDataUrl());
        content.addObject().put("type", "text").put("text", q.prompt());
        ObjectNode message = b.putArray("messages").addObject().put("role", "user");
        message.set("content", content);
        b.put("max_tokens", q.maxTokens());
        if (q.temperature() != null) b.put("temperature", q.temperature());
        if (q.topP() != null) b.put("top_p", q.topP());
        if (q.seed() != null) b.put("seed", q.seed());
        if (!q.choices().isEmpty()) {
            ArrayNode choice = b.putObject("structured_outputs").putArray("choice");
            q.choices().forEach(choice::add);
        }
        return b;
    }

    private record Sent(HttpResponse<String> response, int attempts) {}

    private Sent send(HttpRequest.Builder builder, String what) throws InterruptedException {
        builder.timeout(timeout);
        if (apiKey != null) builder.header("Authorization", "Bearer " + apiKey);
        HttpRequest request = builder.build();
        String lastError = null;
        Throwable lastCause = null;
        for (int attempt = 1; ; attempt++) {
            Duration wait = null;
            inFlight.acquire();
            try {
                HttpResponse<String> r = http.send(request, HttpResponse.BodyHandlers.ofString());
                int s = r.statusCode();
                if (s != 429 && s < 500) return new Sent(r, attempt);
                lastError = "HTTP " + s + ": " + snippet(r.body());
                lastCause = null;
                wait = r.headers().firstValue("Retry-After").flatMap(OpenAiClient::seconds).orElse(null);
            } catch (IOException e) {
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
