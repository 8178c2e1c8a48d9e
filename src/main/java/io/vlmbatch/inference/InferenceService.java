package io.vlmbatch.inference;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The inference endpoints as a job run or the playground uses them: external OpenAI-compatible servers,
 * or the embedded vlmserve (one per GPU with {@code gpus}), and the one client that pools them. start()
 * resolves the URLs (starting embedded servers that are not up yet), builds the client and settles the
 * model, so a missing venv, model or API key is reported before any work.
 */
public final class InferenceService implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(InferenceService.class);

    private final InferenceSpec spec;
    private final EmbeddedInferenceServer embedded;
    private final boolean ownsEmbedded;
    /** Servers started for {@code gpus} (owned by this service), else just the embedded one. */
    private final List<EmbeddedInferenceServer> servers = new ArrayList<>();
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
        List<String> urls = spec.embedded() ? startEmbedded() : spec.baseUrls();
        Map<String, EmbeddedInferenceServer> byUrl = new HashMap<>();
        for (int i = 0; i < servers.size(); i++) byUrl.put(urls.get(i), servers.get(i));
        OpenAiClient c = new OpenAiClient(urls, u -> byUrl.containsKey(u) && byUrl.get(u).restarting(), apiKey(), spec.model(),
                spec.timeout(), spec.retries(), spec.backoff(), spec.concurrency(), spec.downAfter());
        try {
            model = c.model();
        } catch (RuntimeException | InterruptedException e) {
            c.close();
            throw e;
        }
        client = c;
        log.info("inference: {} model {}", String.join(", ", urls), model);
    }

    /** The embedded server, or one per GPU (started side by side: loading a model takes a while). */
    private List<String> startEmbedded() throws Exception {
        List<Integer> gpus = spec.gpus();
        if (gpus != null && !ownsEmbedded) {
            log.warn("inference.gpus is ignored here: this process shares one embedded server between its runs");
            gpus = null;
        }
        if (gpus != null && spec.allGpus()) {
            int found = GpuCount.visible();
            gpus = found <= 1 ? null : java.util.stream.IntStream.range(0, found).boxed().toList();
            if (gpus == null) log.info("inference.gpus: all found at most one GPU: one embedded server");
        }
        if (gpus == null) {
            servers.add(embedded);
            return List.of(embedded.baseUrl());
        }
        for (int g : gpus) servers.add(embedded.onGpu(g));
        List<String> urls = new ArrayList<>();
        try (var threads = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<String>> started = servers.stream().map(srv -> threads.submit(srv::baseUrl)).toList();
            for (Future<String> f : started) {
                try {
                    urls.add(f.get());
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof Exception cause) throw cause;
                    throw e;
                }
            }
        }
        return urls;
    }

    public synchronized OpenAiClient client() {
        if (client == null) throw new IllegalStateException("the inference service was not started");
        return client;
    }

    /** "N requests, M retries" so far (and per endpoint when there are several), or null before start. */
    public synchronized String summary() {
        if (client == null) return null;
        String s = client.requestCount() + " requests, " + client.retryCount() + " retries";
        return client.endpoints().size() > 1 ? s + " (" + client.endpointSummary() + ")" : s;
    }

    public synchronized String model() {
        return model;
    }

    /**
     * The model as the item ledger keys answers by. The embedded server reports the same name for the
     * tiny random model and for real weights, so for it the weights it loads are the identity (known
     * before it starts); an external server is trusted to name what it serves (start() first).
     */
    public synchronized String ledgerModel() {
        if (spec.embedded()) {
            return "embedded:" + (embedded.model() == null ? "tiny-random" : embedded.model().toAbsolutePath().normalize());
        }
        if (model == null) throw new IllegalStateException("the inference service was not started");
        return model;
    }

    /** Where the (first) endpoint is without starting anything: the URL, or null for an embedded server not started yet. */
    public String knownUrl() {
        return spec.embedded() ? embedded.knownUrl() : spec.baseUrls().getFirst();
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
        for (EmbeddedInferenceServer s : servers) if (s != embedded) s.close();
        if (ownsEmbedded && embedded != null) embedded.close();
        servers.clear();
        client = null;
    }
}
