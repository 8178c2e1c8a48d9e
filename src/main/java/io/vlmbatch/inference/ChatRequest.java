package io.vlmbatch.inference;

import java.util.List;

/**
 * One chat completion about one image: the image and the question, after the earlier questions and
 * answers of the conversation (none in a batch run). model null = the client's model. choices
 * non-empty = the answer must be one of them. priority: the server's queue order, lower first
 * (vLLM's convention, 0 = batch work); null = not sent.
 */
public record ChatRequest(String model, String imageDataUrl, List<Turn> earlier, String prompt, int maxTokens,
                          Double temperature, Double topP, Long seed, List<String> choices, Integer priority) {
    /** A question asked before and its answer. */
    public record Turn(String question, String answer) {}

    public ChatRequest {
        earlier = earlier == null ? List.of() : List.copyOf(earlier);
        choices = choices == null ? List.of() : List.copyOf(choices);
    }

    /** A single question about the image, at the server's default priority. */
    public ChatRequest(String model, String imageDataUrl, String prompt, int maxTokens, Double temperature,
                       Double topP, Long seed, List<String> choices) {
        this(model, imageDataUrl, List.of(), prompt, maxTokens, temperature, topP, seed, choices, null);
    }

    /** The same request with this queue priority. */
    public ChatRequest withPriority(Integer priority) {
        return new ChatRequest(model, imageDataUrl, earlier, prompt, maxTokens, temperature, topP, seed, choices, priority);
    }
}
