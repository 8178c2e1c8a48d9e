package io.vlmbatch.template;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import org.junit.jupiter.api.Test;

class TextTemplateTest {
    @Test
    void builtInTemplatesShip() {
        for (String name : TextTemplate.BUILT_IN) {
            assertThat(TextTemplate.builtIn(name).text()).as(name).isNotBlank();
        }
        assertThat(TextTemplate.builtIn("classify").variables()).containsExactly("labels");
        assertThatThrownBy(() -> TextTemplate.builtIn("nope")).hasMessageContaining("no built-in template 'nope'");
    }

    @Test
    void rendersVariablesWithOrWithoutSpaces() {
        TextTemplate t = new TextTemplate("t", "File {{file_name}} from {{ camera }}: one of {{labels}}. $1 \\n");
        assertThat(t.render(Map.of("file_name", "a.jpg", "camera", "cam-2", "labels", "x, y")))
                .isEqualTo("File a.jpg from cam-2: one of x, y. $1 \\n");
    }

    @Test
    void missingVariableNamesIt() {
        TextTemplate t = new TextTemplate("mine.txt", "Where is {{ place }}?");
        assertThatThrownBy(() -> t.render(Map.of())).hasMessageContaining("{{place}}").hasMessageContaining("mine.txt");
    }

    @Test
    void valuesAreInsertedVerbatimNeverReadAsTemplates() {
        TextTemplate t = new TextTemplate("t", "[{{ file_name }}] {{ not a variable }} {{x");
        assertThat(t.variables()).containsExactly("file_name");
        assertThat(t.render(Map.of("file_name", "{{ labels }} \\1 $0 %41")))
                .isEqualTo("[{{ labels }} \\1 $0 %41] {{ not a variable }} {{x");
    }

    @Test
    void pathAndPromptVariablesShareTheEngine() {
        TextTemplate t = new TextTemplate("output.csv", "out/{{ job }}/{{params.shard}}-{{ds}}.csv");
        assertThat(t.variables()).containsExactly("job", "params.shard", "ds");
        assertThatThrownBy(() -> t.render(Map.of("job", "j")::get, v -> "no " + v)).hasMessage("no params.shard");
    }
}
