package io.vlmbatch.inference;

import io.vlmbatch.job.InferenceSpec;
import java.nio.file.Path;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The inference endpoint of one job run: an external server, or the embedded vlmserve started here.
 * start() is called by the command before the job runs, so a missing venv or model is reported up front.
 */
public final class InferenceService implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(InferenceService.class);

    private final InferenceSpec spec;
    private final Path home;
    private final Path modelDir;
    private final Path logDir;
    private EmbeddedInferenceServer server;
    private OpenAiClient client;
    private String model;

    public InferenceService(InferenceSpec spec, Path home, Path modelDir, Path logDir) {
        this.spec = spec;
        this.home = home;
        this.modelDir = modelDir;
        this.logDir = logDir;
    }

    public synchronized void start() throws Exception {
        if (client != null) return;
        String baseUrl = spec.baseUrl();
        if (spec.embedded()) {
            if (modelDir == null) {
                System.err.println("""
                        ************************************************************************
                        * WARNING: no --model given: the embedded inference server runs the TINY *
                        * RANDOM model. Its answers are RANDOM TEXT, useful only to check the    *
                        * pipeline. Pass --model DIR (THUDM/glm-4v-9b) or set inference.base_url. *
                        ************************************************************************""");
            }
            server = EmbeddedInferenceServer.start(home, modelDir, logDir, Duration.ofMinutes(15));
            baseUrl = server.baseUrl();
        } else if (modelDir != null) {
            log.warn("--model is ignored: the job uses the external server {}", baseUrl);
        }
        String apiKey = null;
        if (spec.apiKeyEnv() != null) {
            apiKey = System.getenv(spec.apiKeyEnv());
            if (apiKey == null) throw new IllegalStateException("inference.api_key_env names " + spec.apiKeyEnv() + " but it is not set");
        }
        client = new OpenAiClient(baseUrl, apiKey, spec.timeout(), spec.retries(), spec.backoff(), spec.concurrency());
        model = spec.model() != null ? spec.model() : client.firstModel();
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

    @Override
    public synchronized void close() {
        if (client != null) client.close();
        if (server != null) server.close();
        client = null;
        server = null;
    }
}
