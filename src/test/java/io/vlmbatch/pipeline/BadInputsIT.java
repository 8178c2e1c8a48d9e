package io.vlmbatch.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.image.TestImages;
import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.RunDatabase;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad files become failed items with their reasons while the job completes; a bad job file stops at once. */
class BadInputsIT {

    @Test
    void badImagesFailWithReasonsAndTheJobCompletes(@TempDir Path work) throws Exception {
        Path images = work.resolve("images");
        Files.createDirectories(images);
        Files.write(images.resolve("good.jpg"), ImageFiles.jpeg(640, 480, 1));
        Files.write(images.resolve("empty.jpg"), new byte[0]);
        Files.write(images.resolve("truncated.jpg"), TestImages.truncatedJpeg());
        Files.write(images.resolve("notes.jpg"), TestImages.textFile());
        Files.write(images.resolve("huge.png"), TestImages.bombPng(30000));
        // two names that are not UTF-8 (Latin-1 é and è): two items, not one "caf\uFFFD.jpg"
        Files.write(Path.of(java.net.URI.create(images.toUri() + "caf%E9.jpg")), ImageFiles.jpeg(320, 240, 2));
        Files.write(Path.of(java.net.URI.create(images.toUri() + "caf%E8.jpg")), ImageFiles.jpeg(320, 240, 3));
        // a FIFO nobody writes to: its item fails at once instead of the run waiting on it forever
        assertThat(new ProcessBuilder("mkfifo", images.resolve("pipe.jpg").toString()).start().waitFor()).isZero();
        try (VlmServeProcess server = VlmServeProcess.start(work)) {
            Path job = JobFiles.write(work, "badinputs", server.baseUrl(), 2, 2, 2);
            Launcher launcher = new Launcher(work.resolve("data"), work);

            Launcher.Result r = launcher.run(300, "run", job.toString(), "--date", "2026-04-01");

            assertThat(r.exitCode()).as(r.output()).isZero();
            assertThat(r.output()).contains("COMPLETED").contains("3 done (0 reused from earlier runs, 3 asked), 5 failed");
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                Map<String, String> errors = db.rows("SELECT item_key, status, error FROM vlm_work_item WHERE run_id = ?",
                        db.runId("badinputs")).stream().collect(Collectors.toMap(
                                row -> (String) row.get("item_key"),
                                row -> row.get("status") + ": " + row.get("error")));
                assertThat(errors.get("good.jpg")).startsWith("done");
                assertThat(errors.get("empty.jpg")).startsWith("failed").contains("0 bytes");
                assertThat(errors.get("truncated.jpg")).startsWith("failed").containsIgnoringCase("jpeg");
                assertThat(errors.get("notes.jpg")).startsWith("failed").doesNotEndWith("null");
                assertThat(errors.get("huge.png")).startsWith("failed").contains("30000x30000");
                assertThat(errors.get("caf\\xE9.jpg")).startsWith("done");
                assertThat(errors.get("caf\\xE8.jpg")).startsWith("done");
                assertThat(errors.get("pipe.jpg")).startsWith("failed").contains("not a regular file");
            }
            String csv = Files.readString(work.resolve("out/badinputs.csv"));
            assertThat(csv.lines().count()).as(csv).isGreaterThanOrEqualTo(9);
            assertThat(csv).contains("huge.png").contains("30000x30000");
        }
    }

    @Test
    void aRunInWhichEveryItemFailedEndsFailedWithExitOne(@TempDir Path work) throws Exception {
        Path images = work.resolve("images");
        Files.createDirectories(images);
        Files.write(images.resolve("empty.jpg"), new byte[0]);
        Files.write(images.resolve("notes.jpg"), TestImages.textFile());
        try (VlmServeProcess server = VlmServeProcess.start(work)) {
            Path job = JobFiles.write(work, "allfailed", server.baseUrl(), 2, 2, 2);
            Launcher.Result r = new Launcher(work.resolve("data"), work).run(300, "run", job.toString(), "--date", "2026-04-01");

            assertThat(r.exitCode()).as(r.output()).isEqualTo(1);
            assertThat(r.output()).contains("FAILED").contains("0 done (0 reused from earlier runs, 0 asked), 2 failed").contains("every item failed (2 of 2)");
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                assertThat(db.count("SELECT count(*) FROM batch_job_execution WHERE job_instance_id = ? AND status = 'FAILED'",
                        db.runId("allfailed"))).isEqualTo(1);
            }
            assertThat(Files.readString(work.resolve("out/allfailed.csv"))).contains("empty.jpg").contains("notes.jpg");
        }
    }

    @Test
    void malformedJobFileExitsWithTwoAndNamesTheLine(@TempDir Path work) throws Exception {
        Path job = work.resolve("broken.yaml");
        Files.writeString(job, """
                name: broken
                source: { folder: images }
                tasks:
                  - { name: caption, template: describe
                  - { name: kind, template: classify }
                """);
        Launcher launcher = new Launcher(work.resolve("data"), work);

        Launcher.Result r = launcher.run(60, "run", job.toString());

        assertThat(r.exitCode()).as(r.output()).isEqualTo(2);
        assertThat(r.output()).contains(job + ":5:").contains("malformed YAML");
        assertThat(work.resolve("data")).as("nothing started").doesNotExist();
    }

    @Test
    void invalidFieldExitsWithTwoAndNamesFileLineAndField(@TempDir Path work) throws Exception {
        Path job = work.resolve("invalid.yaml");
        Files.writeString(job, """
                name: invalid
                source: { folder: images }
                tasks:
                  - { name: kind, template: classify }
                """);
        Launcher.Result r = new Launcher(work.resolve("data"), work).run(60, "run", job.toString());

        assertThat(r.exitCode()).as(r.output()).isEqualTo(2);
        assertThat(r.output()).contains(job + ":4: tasks[0].labels:");
    }
}
