package io.vlmbatch.inference;

import java.time.Duration;

/**
 * Where and how to ask. baseUrl is "embedded" (the app starts vlmserve itself) or the URL of any
 * OpenAI-compatible server, with or without the trailing /v1. model null = the server's first model.
 */
public record InferenceSpec(String baseUrl, String model, int concurrency, Duration timeout, int retries,
                            Duration backoff, String apiKeyEnv) {
    public static final String EMBEDDED = "embedded";

    public boolean embedded() { return EMBEDDED.equals(baseUrl); }
}
