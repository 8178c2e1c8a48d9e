package io.vlmbatch.web;

import io.vlmbatch.inference.EmbeddedInferenceServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Iterator;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * The inference server the playground talks to: a configured OpenAI-compatible URL, or the embedded
 * vlmserve started on first use (tiny random model unless serve got --model). Answers are streamed
 * (stream: true) and handed on piece by piece.
 */
public final class PlaygroundEndpoint implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(PlaygroundEndpoint.class);
    private static final ObjectMapper JSON = JsonMapper.builder().build();

    private final String configuredUrl;
    private final Path home;
    private final Path modelDir;
    private final Path logDir;
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();
    private EmbeddedInferenceServer embedded;
    private String model;

    public PlaygroundEndpoint(String configuredUrl, Path home, Path modelDir, Path logDir) {
        this.configuredUrl = configuredUrl == null || configuredUrl.isBlank() ? null : configuredUrl.replaceAll("/+$", "").replaceAll("/v1$", "");
        this.home = home;
        this.modelDir = modelDir;
        this.logDir = logDir;
    }

    /** The server's root URL (without /v1), starting the embedded server if that is what is configured. */
    public synchronized String baseUrl() throws Exception {
        if (configuredUrl != null) return configuredUrl;
        if (embedded == null) {
            log.warn("starting the embedded inference server for the playground{}", modelDir == null
                    ? ": TINY RANDOM model, its answers are random text (serve --model DIR for real weights)" : "");
            embedded = EmbeddedInferenceServer.start(home, modelDir, logDir, Duration.ofMinutes(15));
        }
        return embedded.baseUrl();
    }

    /** Where the endpoint is, without starting anything (for health). Null = embedded, not started. */
    public synchronized String knownUrl() {
        return configuredUrl != null ? configuredUrl : embedded == null ? null : embedded.baseUrl();
    }

    public boolean healthy() {
        String url = knownUrl();
        if (url == null) return true; // embedded, started on demand
        try {
            HttpResponse<Void> r = http.send(HttpRequest.newBuilder(URI.create(url + "/v1/models")).timeout(Duration.ofSeconds(5)).build(),
                    HttpResponse.BodyHandlers.discarding());
            return r.statusCode() == 200;
        } catch (Exception e) {
            return false;
        }
    }

    private synchronized String model(String base) throws Exception {
        if (model == null) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/models")).timeout(Duration.ofSeconds(30)).build(),
                    HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) throw new IllegalStateException("GET /v1/models answered HTTP " + r.statusCode());
            model = JSON.readTree(r.body()).path("data").path(0).path("id").asString();
        }
        return model;
    }

    /**
     * Streams the answer to {@code body} (an OpenAI chat request without model/stream), calling
     * {@code piece} for each piece of text; returns the whole answer.
     */
    public String stream(ObjectNode body, Consumer<String> piece) throws Exception {
        String base = baseUrl();
        body.put("model", model(base));
        body.put("stream", true);
        HttpRequest request = HttpRequest.newBuilder(URI.create(base + "/v1/chat/completions"))
                .header("Content-Type", "application/json").timeout(Duration.ofMinutes(10))
                .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body))).build();
        HttpResponse<Stream<String>> r = http.send(request, HttpResponse.BodyHandlers.ofLines());
        StringBuilder answer = new StringBuilder();
        try (Stream<String> lines = r.body()) {
            if (r.statusCode() != 200) {
                throw new IllegalStateException("the inference server answered HTTP " + r.statusCode() + ": "
                        + String.join(" ", lines.limit(20).toList()));
            }
            Iterator<String> it = lines.iterator();
            while (it.hasNext()) {
                String line = it.next();
                if (!line.startsWith("data:")) continue;
                String data = line.substring(5).strip();
                if (data.equals("[DONE]")) break;
                JsonNode event = JSON.readTree(data);
                if (event.has("error")) throw new IllegalStateException(event.path("error").path("message").asString(data));
                String text = event.path("choices").path(0).path("delta").path("content").asString("");
                if (!text.isEmpty()) {
                    answer.append(text);
                    piece.accept(text);
                }
            }
        }
        return answer.toString();
    }

    @Override
    public synchronized void close() {
        http.close();
        if (embedded != null) embedded.close();
    }
}
