package io.vlmbatch.inference;

/** The outcome of one request: an answer, or the reason there is none (error != null). */
public record ChatResult(String answer, String error, String model, Integer promptTokens, Integer completionTokens,
                         long latencyMs, int attempts) {
    public static ChatResult failed(String error, long latencyMs, int attempts) {
        return new ChatResult(null, error, null, null, null, latencyMs, attempts);
    }

    public boolean ok() { return error == null; }

    public ChatResult withError(String reason) {
        return new ChatResult(answer, reason, model, promptTokens, completionTokens, latencyMs, attempts);
    }
}
