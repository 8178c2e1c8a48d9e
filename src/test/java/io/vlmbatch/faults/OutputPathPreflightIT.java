package io.vlmbatch.faults;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An output the export step could not write is refused before anything starts (no database, no
 * inference): one line naming the file, line and field, exit 2 like any other job-file error.
 */
class OutputPathPreflightIT {

    private static Path job(Path work, String output) throws Exception {
        ImageFiles.writeJpegs(work.resolve("images"), 2, 64, 48);
        Path file = work.resolve("outs.yaml");
        Files.writeString(file, """
                name: outs
                source: { folder: images }
                tasks:
                  - { name: caption, template: describe }
                %s
                inference: { base_url: "http://127.0.0.1:9/v1" }
                """.formatted(output));
        return file;
    }

    @Test
    void aCsvPathThatIsAFolderIsRefusedBeforeAnyInference(@TempDir Path work) throws Exception {
        Files.createDirectories(work.resolve("out/outs-2026-09-01.csv"));
        Path job = job(work, "output: { csv: \"out/{{ job }}-{{ ds }}.csv\" }");
        Launcher.Result r = new Launcher(work.resolve("data"), work).run(120, "run", job.toString(), "--date", "2026-09-01");
        assertThat(r.exitCode()).as(r.output()).isEqualTo(2);
        assertThat(r.output().strip()).isEqualTo("error: " + job + ":5: output.csv: " + work.resolve("out/outs-2026-09-01.csv")
                + " is a folder; name a file");
        assertThat(work.resolve("data")).as("nothing started").doesNotExist();
    }

    @Test
    void aJsonlWhoseFolderCannotBeMadeIsRefused(@TempDir Path work) throws Exception {
        Files.writeString(work.resolve("results"), "a file where a folder should be\n");
        Path job = job(work, "output: { csv: ok.csv, jsonl: results/items.jsonl }");
        Launcher.Result r = new Launcher(work.resolve("data"), work).run(120, "restart", job.toString(), "--date", "2026-09-01");
        assertThat(r.exitCode()).as(r.output()).isEqualTo(2);
        assertThat(r.output()).contains(job + ":5: output.jsonl: cannot create the folder " + work.resolve("results"))
                .contains(work.resolve("results") + " is a file").doesNotContain("\tat ");
        assertThat(work.resolve("data")).as("nothing started").doesNotExist();
    }
}
