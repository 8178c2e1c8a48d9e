package io.vlmbatch.job;

import io.vlmbatch.template.TextTemplate;
import java.util.List;

/**
 * One question asked about every image. With labels the task is a choice: the server is asked to answer
 * with one of them ({@code structured_outputs.choice}) and the answer is checked on return.
 */
public record TaskSpec(String name, TextTemplate template, List<String> labels, int maxTokens,
                       Double temperature, Double topP, Long seed) {
    public TaskSpec {
        labels = labels == null ? List.of() : List.copyOf(labels);
    }

    public boolean isChoice() { return !labels.isEmpty(); }
}
