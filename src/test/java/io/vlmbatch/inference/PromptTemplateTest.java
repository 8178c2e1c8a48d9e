package io.vlmbatch.inference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import org.junit.jupiter.api.Test;

class PromptTemplateTest {
    @Test
    void builtInTemplatesShip() {
        for (String name : PromptTemplate.BUILT_IN) {
            assertThat(PromptTemplate.builtIn(name).text()).as(name).isNotBlank();
        }
        assertThat(PromptTemplate.builtIn("classify").variables()).containsExactly("labels");
        assertThatThrownBy(() -> PromptTemplate.builtIn("nope")).hasMessageContaining("no built-in template 'nope'");
    }

    @Test
    void rendersVariablesWithOrWithoutSpaces() {
        PromptTemplate t = new PromptTemplate("t", "File {{file_name}} from {{ camera }}: one of {{labels}}. $1 \\n");
        assertThat(t.render(Map.of("file_name", "a.jpg", "camera", "cam-2", "labels", "x, y")))
                .isEqualTo("File a.jpg from cam-2: one of x, y. $1 \\n");
    }

    @Test
    void missingVariableNamesIt() {
        PromptTemplate t = new PromptTemplate("mine.txt", "Where is {{ place }}?");
        assertThatThrownBy(() -> t.render(Map.of())).hasMessageContaining("{{place}}").hasMessageContaining("mine.txt");
    }
}
