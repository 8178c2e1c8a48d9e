package io.vlmbatch.inference;

import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An inference endpoint as a job run or the playground uses it: an external OpenAI-compatible server,
 * or the embedded vlmserve, and the one client that talks to it. start() resolves the URL (starting the
 * embedded server if it is not up yet), builds the client and settles the model, so a missing venv,
 * model or API key is reported before any work.
 */
public final class InferenceService implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(InferenceService.class);

    private final InferenceSpec spec;
    private final EmbeddedInferenceServer embedded;
    private final boolean ownsEmbedded;
    private OpenAiClient client;
    private String model;

    /**
     * @param embedded     the server for {@code base_url: embedded} (started on first use; may be null when
     *                     the spec names a URL)
     * @param ownsEmbedded close the embedded server with this service (a CLI run), rather than leave it to
     *                     its other users (serve)
     */
    public InferenceService(InferenceSpec spec, EmbeddedInferenceServer embedded, boolean ownsEmbedded) {
        if (spec.embedded() && embedded == null) throw new IllegalArgumentException("base_url is embedded but no embedded server was given");
        this.spec = spec;
        this.embedded = embedded;
        this.ownsEmbedded = ownsEmbedded;
    }

    public synchronized void start() throws Exception {
        if (client != null) return;
        if (!spec.embedded() && ownsEmbedded && embedded.model() != null) {
            log.warn("--model is ignored: the job uses the external server {}", spec.baseUrl());
        }
        String baseUrl = spec.embedded() ? embedded.baseUrl() : spec.baseUrl();
        OpenAiClient c = new OpenAiClient(baseUrl, apiKey(), spec.model(), spec.timeout(), spec.retries(), spec.backoff(), spec.concurrency());
        try {
            model = c.model();
        } catch (RuntimeException | InterruptedException e) {
            c.close();
            throw e;
        }
        client = c;
        log.info("inference: {} model {}", client.base(), model);
    }

    public synchronized OpenAiClient client() {
        if (client == null) throw new IllegalStateException("the inference service was not started");
        return client;
    }

    /** "N requests, M retries" so far, or null before start. */
    public synchronized String summary() {
        return client == null ? null : client.requestCount() + " requests, " + client.retryCount() + " retries";
    }

    public synchronized String model() {
        return model;
    }

    /** Where the endpoint is without starting anything: the URL, or null for an embedded server not started yet. */
    public String knownUrl() {
        return spec.embedded() ? embedded.knownUrl() : spec.baseUrl();
    }

    /** The endpoint answers GET /v1/models now (one try, a few seconds at most); false when there is none yet. */
    public boolean healthy() {
        String url = knownUrl();
        if (url == null) return false;
        try (OpenAiClient probe = new OpenAiClient(url, apiKey(), null, Duration.ofSeconds(5), 0, Duration.ofMillis(1), 1)) {
            return probe.healthy();
        } catch (IllegalStateException noKey) {
            return false;
        }
    }

    private String apiKey() {
        if (spec.apiKeyEnv() == null) return null;
        String key = System.getenv(spec.apiKeyEnv());
        if (key == null) throw new IllegalStateException("inference.api_key_env names " + spec.apiKeyEnv() + " but it is not set");
        return key;
    }

    @Override
    public synchronized void close() {
        if (client != null) client.close();
        if (ownsEmbedded && embedded != null) embedded.close();
        client = null;
    }
}
