package io.vlmbatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.source.SourceSpec;
import io.vlmbatch.source.Sources;
import io.vlmbatch.template.TextTemplate;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {{file_name}} is the name on disk, whatever characters it holds, not a percent-encoded URI segment. */
class WorkItemTest {
    @TempDir
    Path dir;

    @Test
    void fileNameIsTheDecodedNameOfFilesFoundInAFolder() throws Exception {
        List<String> names = List.of("a b.jpg", "100%.jpg", "%41%20 literal.jpg", "x+y=z#1?.jpg", "日本 写真.jpg",
                "{{ file_name }}.jpg", "$1 \\n.jpg", "ü-e\u0301.jpg");
        for (String n : names) Files.writeString(dir.resolve(n), "x");
        List<String> found = new ArrayList<>();
        Sources.open(SourceSpec.folder(dir.toString()).withInclude(List.of("*.jpg")), dir).discover(item -> {
            WorkItem w = new WorkItem(1, 1, item.itemKey(), item.uri(), item.metadata());
            String prompt = new TextTemplate("t", "Name: {{file_name}}.").render(Map.of("file_name", w.fileName()));
            found.add(prompt.substring("Name: ".length(), prompt.length() - 1));
        });
        assertThat(found).containsExactlyInAnyOrderElementsOf(names);
    }

    @Test
    void s3KeysAreTakenVerbatimAndBadEscapesStay() {
        assertThat(new WorkItem(1, 1, "k", "s3://b/in/a%20b.jpg", Map.of()).fileName()).isEqualTo("a%20b.jpg");
        assertThat(new WorkItem(1, 1, "k", "file:///in/a%2", Map.of()).fileName()).isEqualTo("a%2");
        assertThat(new WorkItem(1, 1, "k", "file:///in/%zz%E6%97%A5", Map.of()).fileName()).isEqualTo("%zz日");
    }
}
