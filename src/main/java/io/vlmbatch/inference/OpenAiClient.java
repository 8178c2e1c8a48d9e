package io.vlmbatch.inference;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Predicate;
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
    /** Attempts of one request that may fail to reach an endpoint before they count against its retries. */
    private static final int MAX_UNREACHABLE_PER_ENDPOINT = 5;

    private final EndpointPool pool;
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
    /** Set when a server refused a request's priority (vLLM does unless started with --scheduling-policy priority). */
    private final AtomicBoolean prioritiesRefused = new AtomicBoolean();
    private volatile String model;

    /**
     * @param model   what to ask for; null = the first model the server lists, looked up on first use
     * @param timeout for one attempt of one request (a streamed answer: until its last piece)
     */
    public OpenAiClient(String baseUrl, String apiKey, String model, Duration timeout, int retries, Duration backoff,
                        int concurrency) {
        this(List.of(baseUrl), u -> false, apiKey, model, timeout, retries, backoff, concurrency, InferenceSpec.DEFAULT_DOWN_AFTER);
    }

    /**
     * A client of a pool of servers that serve the same model.
     *
     * @param comingBack for an endpoint's URL: true while this app restarts that server
     * @param downAfter  how long requests wait while no endpoint answers before they fail
     */
    public OpenAiClient(List<String> baseUrls, Predicate<String> comingBack, String apiKey, String model, Duration timeout,
                        int retries, Duration backoff, int concurrency, Duration downAfter) {
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
        // last: the pool's health checks start at once and call probe(), which needs every field above
        this.pool = new EndpointPool(baseUrls.stream().map(u -> new Endpoint(apiBase(u), () -> comingBack.test(u))).toList(),
                downAfter, this::probe);
    }

    /** "http://h:8000", "http://h:8000/" and "http://h:8000/v1" all mean the same API root. */
    static URI apiBase(String baseUrl) {
        String b = baseUrl.strip().replaceAll("/+$", "");
        if (!b.endsWith("/v1")) b = b + "/v1";
        return URI.create(b + "/");
    }

    /** The first endpoint's API root (the only one for a single server). */
    public URI base() { return pool.endpoints().getFirst().base(); }

    /** The pool's endpoints, with what was asked of each. */
    public List<Endpoint> endpoints() { return pool.endpoints(); }

    /** Per endpoint: "url: N requests, M errors, mean X ms, max Y ms"; endpoints separated by "; ". */
    public String endpointSummary() { return pool.summary(); }

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
        Sent<String> sent = send(b -> HttpRequest.newBuilder(b.resolve("models")).GET(), null, "GET /v1/models");
        HttpResponse<String> r = sent.response;
        URI base = sent.endpoint.base();
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

    /** Some endpoint answers GET /v1/models with 200 within 5 s (one attempt each, for health checks). */
    public boolean healthy() {
        return pool.endpoints().stream().anyMatch(this::probe);
    }

    private boolean probe(Endpoint e) {
        try {
            HttpRequest.Builder b = HttpRequest.newBuilder(e.base().resolve("models")).timeout(Duration.ofSeconds(5));
            if (apiKey != null) b.header("Authorization", "Bearer " + apiKey);
            return http.send(b.build(), HttpResponse.BodyHandlers.discarding()).statusCode() == 200;
        } catch (IOException ex) {
            return false;
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    public ChatResult complete(ChatRequest request) throws InterruptedException {
        requestCount.incrementAndGet();
        long start = System.nanoTime();
        boolean withPriority = sendsPriority(request);
        Sent<String> sent = sendChat(request, false, withPriority, HttpResponse.BodyHandlers.ofString(), OpenAiClient::snippet);
        if (withPriority && refusedPriority(sent, sent.response.body())) {
            sent = again(sent, sendChat(request, false, false, HttpResponse.BodyHandlers.ofString(), OpenAiClient::snippet));
        }
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
        Function<Stream<String>, String> describe = lines -> String.join(" ", lines.limit(20).toList());
        boolean withPriority = sendsPriority(request);
        Sent<Stream<String>> sent = sendChat(request, true, withPriority, HttpResponse.BodyHandlers.ofLines(), describe);
        if (withPriority && sent.response.statusCode() == 400) {
            String refusal;
            try (Stream<String> lines = sent.response.body()) {
                refusal = describe.apply(lines);
            }
            if (!refusedPriority(sent, refusal)) {
                throw new IllegalStateException("the inference server answered HTTP 400: " + snippet(refusal));
            }
            sent = again(sent, sendChat(request, true, false, HttpResponse.BodyHandlers.ofLines(), describe));
        }
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
                    throw new InferenceUnavailableException("the answer stream from " + sent.endpoint.name() + " broke off: " + e.getCause(), e.getCause());
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

    /**
     * Sends one chat completion, with the request's priority when {@code withPriority}. The callers send it again
     * without the priority when the server refuses the field (see {@link #refusedPriority}).
     */
    private <T> Sent<T> sendChat(ChatRequest request, boolean stream, boolean withPriority, HttpResponse.BodyHandler<T> handler,
                                 Function<T, String> describe) throws InterruptedException {
        String body = json.writeValueAsString(body(request, stream, withPriority));
        return send(b -> post(b, body), request.imageDataUrl(), "POST /v1/chat/completions" + (stream ? " (stream)" : ""),
                handler, describe);
    }

    /**
     * Whether this answer to a request sent with a priority refuses the field: a 400 naming it (vLLM's "Got priority
     * -1 but Priority scheduling is not enabled"). Then no later request carries one either: the answer matters more
     * than its place in the queue, and a server that refuses the field once always will.
     */
    private boolean refusedPriority(Sent<?> sent, String body) {
        if (sent.response.statusCode() != 400 || body == null || !body.toLowerCase(Locale.ROOT).contains("priority")) {
            return false;
        }
        if (prioritiesRefused.compareAndSet(false, true)) {
            log.warn("{} does not take request priorities ({}); sending without them from now on, so interactive "
                    + "questions queue behind batch work there", sent.endpoint.name(), snippet(body));
        }
        return true;
    }

    private static <T> Sent<T> again(Sent<?> first, Sent<T> second) {
        return new Sent<>(second.response, first.attempts + second.attempts, second.endpoint);
    }

    private boolean sendsPriority(ChatRequest request) {
        return request.priority() != null && request.priority() != 0 && !prioritiesRefused.get();
    }

    private static HttpRequest.Builder post(URI base, String body) {
        return HttpRequest.newBuilder(base.resolve("chat/completions"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
    }

    /** The earlier turns, then the image and the question. The image leads its message so that all tasks of one image share a prefix. */
    private ObjectNode body(ChatRequest q, boolean stream, boolean withPriority) throws InterruptedException {
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
        if (withPriority) b.put("priority", q.priority());
        if (stream) b.put("stream", true);
        return b;
    }

    private record Sent<T>(HttpResponse<T> response, int attempts, Endpoint endpoint) {}

    private Sent<String> send(Function<URI, HttpRequest.Builder> request, Object image, String what) throws InterruptedException {
        return send(request, image, what, HttpResponse.BodyHandlers.ofString(), OpenAiClient::snippet);
    }

    /**
     * Sends to the pool: each attempt goes to an endpoint the pool chooses (the image's, if it has one).
     * An attempt that could not reach its endpoint, or was aborted because the endpoint was taken out, is
     * redone elsewhere without spending the request's retries (the pool bounds how long that can go on;
     * a cap on such attempts guards against an endpoint that passes its health check but drops every
     * request). It still counts in {@link #retryCount()}.
     *
     * @param request  the request for an endpoint's API root
     * @param image    requests about the same image object go to the same endpoint (null: any)
     * @param describe reads the body of a response that will be retried, for the log and the last error
     */
    private <T> Sent<T> send(Function<URI, HttpRequest.Builder> request, Object image, String what,
                             HttpResponse.BodyHandler<T> handler, Function<T, String> describe) throws InterruptedException {
        String lastError = null;
        Throwable lastCause = null;
        Endpoint previous = null;
        int unreachable = 0;
        for (int attempt = 1; ; ) {
            Duration wait = null;
            Endpoint endpoint = pool.acquire(image, previous, what);
            inFlight.acquire();
            CompletableFuture<HttpResponse<T>> exchange = null;
            boolean outOfPool = false;
            try {
                HttpRequest.Builder builder = request.apply(endpoint.base()).timeout(timeout);
                if (apiKey != null) builder.header("Authorization", "Bearer " + apiKey);
                long start = System.nanoTime();
                exchange = http.sendAsync(builder.build(), handler);
                endpoint.started(exchange);
                HttpResponse<T> r = exchange.get();
                int s = r.statusCode();
                if (s != 429 && s < 500) {
                    endpoint.answered((System.nanoTime() - start) / 1_000_000);
                    return new Sent<>(r, attempt, endpoint);
                }
                endpoint.failed();
                lastError = "HTTP " + s + " from " + endpoint.name() + ": " + snippet(describe.apply(r.body()));
                lastCause = null;
                wait = r.headers().firstValue("Retry-After").flatMap(OpenAiClient::seconds).orElse(null);
            } catch (CancellationException e) {
                outOfPool = true;
                lastError = endpoint.name() + " was taken out of the pool (" + endpoint.downReason() + ")";
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                if (cause instanceof CancellationException) { // the exchange was aborted by takeOut
                    outOfPool = true;
                    lastError = endpoint.name() + " was taken out of the pool (" + endpoint.downReason() + ")";
                } else {
                    endpoint.failed();
                    lastError = cause.getClass().getSimpleName() + " from " + endpoint.name()
                            + (cause.getMessage() == null ? "" : ": " + cause.getMessage());
                    lastCause = cause;
                    // unreachable (refused, reset, closed): out of the pool until its health check passes;
                    // a timeout may be one slow request, so that is left to the health check
                    if (cause instanceof IOException && !(cause instanceof HttpTimeoutException)) {
                        pool.takeOut(endpoint, lastError);
                        outOfPool = true;
                    }
                }
            } catch (InterruptedException e) {
                if (exchange != null) exchange.cancel(true);
                throw e;
            } finally {
                if (exchange != null) endpoint.finished(exchange);
                inFlight.release();
                pool.release(image);
            }
            previous = endpoint;
            if (outOfPool && ++unreachable <= MAX_UNREACHABLE_PER_ENDPOINT * pool.endpoints().size()) {
                retryCount.incrementAndGet();
                log.warn("{} failed ({}), trying again on the pool", what, lastError);
                continue;
            }
            if (attempt > retries) {
                throw new InferenceUnavailableException(what + " failed " + attempt + " times; last error: " + lastError, lastCause);
            }
            attempt++;
            retryCount.incrementAndGet();
            if (wait == null) wait = backoff(attempt - 1);
            // Logged, not hidden: a retry after a timeout may have been answered by the server too.
            log.warn("{} failed ({}), retry {} of {} in {} ms", what, lastError, attempt - 1, retries, wait.toMillis());
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
        pool.close();
        http.close();
        executor.close();
    }
}
