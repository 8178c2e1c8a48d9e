package io.vlmbatch.job;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OutputPathsTest {
    private static final RunParameters DATE = new RunParameters(LocalDate.of(2026, 5, 1), Map.of());

    private static JobDefinition job(Path dir, String output) throws Exception {
        Files.createDirectories(dir.resolve("images"));
        Path file = dir.resolve("job.yaml");
        Files.writeString(file, """
                name: outs
                source: { folder: images }
                tasks:
                  - { name: caption, template: describe }
                output:
                %s
                """.formatted(output));
        return JobFileLoader.load(file);
    }

    @Test
    void fileOutputsInFoldersThatExistOrCanBeMadePass(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("old.csv"), "an earlier export\n");
        OutputPaths.check(job(dir, "  csv: old.csv\n  jsonl: \"out/{{ ds }}/items.jsonl\"\n  documents: out/docs.jsonl"), DATE);
        assertThat(OutputPaths.resolve(job(dir, "  csv: \"out/{{ ds_nodash }}.csv\""), DATE))
                .containsEntry("output.csv", dir.resolve("out/20260501.csv"));
    }

    @Test
    void aFolderIsRefusedWithTheFileLineAndField(@TempDir Path dir) throws Exception {
        Files.createDirectories(dir.resolve("out/2026-05-01.csv"));
        JobDefinition def = job(dir, "  csv: \"out/{{ ds }}.csv\"");
        assertThatThrownBy(() -> OutputPaths.check(def, DATE)).isInstanceOf(JobFileException.class)
                .hasMessage(def.file() + ":6: output.csv: " + dir.resolve("out/2026-05-01.csv") + " is a folder; name a file");
    }

    @Test
    void aParentThatIsAFileIsRefused(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("out"), "a file where the folder should be\n");
        JobDefinition def = job(dir, "  csv: a.csv\n  jsonl: out/deeper/items.jsonl");
        assertThatThrownBy(() -> OutputPaths.check(def, DATE)).isInstanceOf(JobFileException.class)
                .hasMessageContaining(":7: output.jsonl: cannot create the folder " + dir.resolve("out/deeper"))
                .hasMessageEndingWith(dir.resolve("out") + " is a file");
    }

    @Test
    void aFifoAndTwoOutputsInOneFileAreRefused(@TempDir Path dir) throws Exception {
        assertThat(new ProcessBuilder("mkfifo", dir.resolve("pipe.csv").toString()).start().waitFor()).isZero();
        assertThatThrownBy(() -> OutputPaths.check(job(dir, "  csv: pipe.csv"), DATE)).hasMessageContaining("is not a regular file");
        assertThatThrownBy(() -> OutputPaths.check(job(dir, "  jsonl: same.jsonl\n  documents: ./same.jsonl"), DATE))
                .hasMessageContaining("output.documents: " + dir.resolve("same.jsonl") + " is also output.jsonl");
    }

    @Test
    void hostileTemplatedPathsStayChecked(@TempDir Path dir) throws Exception {
        // a --param that climbs out of the folder still names a path that is checked as any other
        Files.createDirectories(dir.resolve("victim"));
        JobDefinition def = job(dir, "  csv: \"out/{{ params.name }}\"");
        RunParameters climbing = new RunParameters(LocalDate.of(2026, 5, 1), Map.of("name", "../victim"));
        assertThatThrownBy(() -> OutputPaths.check(def, climbing)).hasMessageContaining(dir.resolve("victim") + " is a folder");
    }
}
