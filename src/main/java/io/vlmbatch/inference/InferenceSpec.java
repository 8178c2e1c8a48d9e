package io.vlmbatch.inference;

import java.time.Duration;
import java.util.List;

/**
 * Where and how to ask. baseUrls is ["embedded"] (the app starts vlmserve itself) or the URLs of one or
 * more OpenAI-compatible servers, with or without the trailing /v1, pooled. model null = the server's
 * first model. gpus (embedded only): null = one server as the environment gives it; a list of device
 * numbers = one server per device; {@link #ALL_GPUS} = one per GPU found (one server when none is).
 * downAfter: see {@link EndpointPool}.
 */
public record InferenceSpec(List<String> baseUrls, String model, int concurrency, Duration timeout, int retries,
                            Duration backoff, String apiKeyEnv, List<Integer> gpus, Duration downAfter) {
    public static final String EMBEDDED = "embedded";
    /** gpus: all; an empty list cannot be written in a job file for anything else. */
    public static final List<Integer> ALL_GPUS = List.of();
    /** How long a pool without any endpoint that answers waits before the run's requests fail. */
    public static final Duration DEFAULT_DOWN_AFTER = Duration.ofSeconds(60);

    public InferenceSpec {
        if (baseUrls == null || baseUrls.isEmpty()) throw new IllegalArgumentException("no base_url");
        baseUrls = List.copyOf(baseUrls);
        gpus = gpus == null ? null : List.copyOf(gpus);
        if (downAfter == null) downAfter = DEFAULT_DOWN_AFTER;
    }

    /** One endpoint (or the embedded server), as before pools. */
    public InferenceSpec(String baseUrl, String model, int concurrency, Duration timeout, int retries, Duration backoff,
                         String apiKeyEnv) {
        this(List.of(baseUrl), model, concurrency, timeout, retries, backoff, apiKeyEnv, null, null);
    }

    public boolean allGpus() { return gpus != null && gpus.isEmpty(); }

    public boolean embedded() { return baseUrls.equals(List.of(EMBEDDED)); }

    /** For messages: the URL, or the URLs comma-separated. */
    public String baseUrl() { return String.join(", ", baseUrls); }
}
