package io.vlmbatch.batch;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.inference.ChatResult;
import io.vlmbatch.template.TextTemplate;
import io.vlmbatch.job.TaskSpec;
import java.util.List;
import org.junit.jupiter.api.Test;

class ChoiceCheckTest {
    private final TaskSpec classify = new TaskSpec("kind", TextTemplate.builtIn("classify"), List.of("photo", "chart"), 16, null, null, null);

    private static ChatResult answer(String text) {
        return new ChatResult(text, null, "m", 1, 1, 5, 1);
    }

    @Test
    void aLabelPassesAndIsStoredRaw() {
        ChatResult r = InferenceWriter.checked(classify, answer("chart\n"));
        assertThat(r.ok()).isTrue();
        assertThat(r.answer()).isEqualTo("chart\n");
    }

    @Test
    void anythingElseFailsTheTaskWithTheReason() {
        ChatResult r = InferenceWriter.checked(classify, answer("a diagram, probably"));
        assertThat(r.ok()).isFalse();
        assertThat(r.error()).contains("a diagram, probably").contains("[photo, chart]");
        assertThat(r.answer()).isEqualTo("a diagram, probably");
    }

    @Test
    void freeTextTasksAreNotChecked() {
        TaskSpec describe = new TaskSpec("caption", TextTemplate.builtIn("describe"), List.of(), 64, null, null, null);
        assertThat(InferenceWriter.checked(describe, answer("anything")).ok()).isTrue();
    }
}
