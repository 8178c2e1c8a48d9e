package io.vlmbatch.inference;

import java.util.List;

/** One chat completion about one image. choices non-empty = the answer must be one of them. */
public record ChatRequest(String model, String imageDataUrl, String prompt, int maxTokens, Double temperature,
                          Double topP, Long seed, List<String> choices) {
    public ChatRequest {
        choices = choices == null ? List.of() : List.copyOf(choices);
    }
}
