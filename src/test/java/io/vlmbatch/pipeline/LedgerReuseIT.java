package io.vlmbatch.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.RunDatabase;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.apache.commons.csv.CSVFormat;
import org.apache.commons.csv.CSVRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The nightly scenario of the item ledger, through the launcher against the real vlmserve (requests
 * counted on the server's /metrics, not by the client that is under test): night 1 asks everything,
 * night 2 only what is new (a renamed copy counts as known), a changed prompt re-asks only its task,
 * and run.reuse: false asks everything again. `plan` before a night says what that night then does.
 */
class LedgerReuseIT {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final Set<String> LABELS = Set.of("photo", "document", "chart");

    @Test
    void laterNightsPayOnlyForWhatIsNew(@TempDir Path work) throws Exception {
        Path images = work.resolve("images");
        ImageFiles.writeJpegs(images, 4, 320, 240);
        try (VlmServeProcess server = VlmServeProcess.start(work)) {
            Path job = writeJob(work, server.baseUrl(), "Describe the image in one sentence.", true);
            Launcher launcher = new Launcher(work.resolve("data"), work);

            Launcher.Result plan1 = launcher.run(120, "plan", job.toString(), "--date", "2026-03-01");
            assertThat(plan1.exitCode()).as(plan1.output()).isZero();
            assertThat(plan1.output()).contains("items:     4").contains("requests:  8").contains("no estimate");

            Launcher.Result night1 = launcher.run(300, "run", job.toString(), "--date", "2026-03-01");
            assertThat(night1.exitCode()).as(night1.output()).isZero();
            assertThat(server.requestsFinished()).as("night 1: 4 images x 2 tasks").isEqualTo(8);
            assertThat(night1.output()).contains("inference: 8 requests");

            // night 2: the same four, two new ones, and a renamed copy of an old one
            Files.write(images.resolve("new-a.jpg"), ImageFiles.jpeg(320, 240, 100));
            Files.write(images.resolve("new-b.jpg"), ImageFiles.jpeg(320, 240, 101));
            Files.copy(images.resolve("img0002.jpg"), images.resolve("renamed-copy.jpg"));
            long before = server.requestsFinished();
            Launcher.Result plan2 = launcher.run(120, "plan", job.toString(), "--date", "2026-03-02", "--json");
            assertThat(plan2.exitCode()).as(plan2.output()).isZero();
            JsonNode plan = JSON.readTree(plan2.output().lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElseThrow());
            assertThat(plan.path("items").asLong()).isEqualTo(7);
            assertThat(plan.path("reused_items").asLong()).isEqualTo(5);
            assertThat(plan.path("new_items").asLong()).isEqualTo(2);
            assertThat(plan.path("requests").asLong()).isEqualTo(4);
            assertThat(plan.path("estimated_seconds").isNumber()).as("night 1 measured a rate: " + plan).isTrue();
            assertThat(server.requestsFinished()).as("plan sends no request").isEqualTo(before);
            Launcher.Result night2 = launcher.run(300, "run", job.toString(), "--date", "2026-03-02");
            assertThat(night2.exitCode()).as(night2.output()).isZero();
            assertThat(server.requestsFinished() - before).as("night 2: only the 2 new images x 2 tasks").isEqualTo(4);
            assertThat(night2.output()).contains("inference: 4 requests").contains("5 reused");
            List<CSVRecord> rows = csv(work.resolve("out/nightly.csv"));
            assertThat(rows).hasSize(7);
            for (CSVRecord row : rows) {
                assertThat(row.get("status")).as(row.get("item_key")).isEqualTo("done");
                assertThat(LABELS).as("kind of " + row.get("item_key")).contains(row.get("kind"));
            }
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                long run1 = runId(db, "2026-03-01"), run2 = runId(db, "2026-03-02");
                assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND reused", run2)).isEqualTo(5);
                assertThat(db.count("""
                        SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                        WHERE w.run_id = ? AND r.reused_from_run = ?""", run2, run1)).as("reused answers point at night 1").isEqualTo(10);
                // the renamed copy got the very answers of its original
                assertThat(db.count("""
                        SELECT count(*) FROM vlm_result a JOIN vlm_work_item wa ON wa.id = a.work_item_id
                        JOIN vlm_result b ON b.task = a.task AND b.answer = a.answer JOIN vlm_work_item wb ON wb.id = b.work_item_id
                        WHERE wa.run_id = ? AND wa.item_key = 'img0002.jpg' AND wb.run_id = ? AND wb.item_key = 'renamed-copy.jpg'""",
                        run1, run2)).isEqualTo(2);
                assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND content_hash IS NULL", run2)).isZero();
            }
            Launcher.Result status = launcher.run(120, "status", "nightly");
            assertThat(status.exitCode()).as(status.output()).isZero();
            assertThat(status.output()).contains("REUSED");
            assertThat(status.output().lines().filter(l -> l.contains("2026-03-02")).findFirst().orElseThrow())
                    .matches(".*\\s7\\s+0\\s+0\\s+5\\s*$");

            // night 3: the caption's prompt changed; only the caption is asked again, the label is reused
            writeJob(work, server.baseUrl(), "Describe the image in five words.", true);
            Launcher.Result plan3 = launcher.run(120, "plan", job.toString(), "--date", "2026-03-03", "--json");
            assertThat(plan3.exitCode()).as(plan3.output()).isZero();
            JsonNode p3 = JSON.readTree(plan3.output().lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElseThrow());
            before = server.requestsFinished();
            Launcher.Result night3 = launcher.run(300, "run", job.toString(), "--date", "2026-03-03");
            assertThat(night3.exitCode()).as(night3.output()).isZero();
            assertThat(server.requestsFinished() - before).as("night 3: 7 captions, no labels").isEqualTo(7);
            // what plan said is what the run did: items, reused, new, and requests sent
            assertThat(p3.path("items").asLong()).isEqualTo(7);
            assertThat(p3.path("reused_items").asLong()).as("every item has a new caption to ask").isZero();
            assertThat(p3.path("new_items").asLong()).isEqualTo(7);
            assertThat(p3.path("requests").asLong()).isEqualTo(server.requestsFinished() - before);
            assertThat(p3.path("reused_answers").asLong()).as("the 7 labels").isEqualTo(7);
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                long run3 = runId(db, "2026-03-03");
                assertThat(db.count("""
                        SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                        WHERE w.run_id = ? AND r.task = 'kind' AND r.reused_from_run IS NOT NULL""", run3)).isEqualTo(7);
                assertThat(db.count("""
                        SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                        WHERE w.run_id = ? AND r.task = 'caption' AND r.reused_from_run IS NULL""", run3)).isEqualTo(7);
            }

            // run.reuse: false asks everything
            writeJob(work, server.baseUrl(), "Describe the image in five words.", false);
            before = server.requestsFinished();
            Launcher.Result night4 = launcher.run(300, "run", job.toString(), "--date", "2026-03-04");
            assertThat(night4.exitCode()).as(night4.output()).isZero();
            assertThat(server.requestsFinished() - before).isEqualTo(14);
            assertThat(night4.output()).contains("inference: 14 requests");
        }
    }

    private static long runId(RunDatabase db, String date) {
        return db.count("SELECT run_id FROM vlm_run WHERE job_name = 'nightly' AND logical_date = ?::date", date);
    }

    static Path writeJob(Path dir, String baseUrl, String captionPrompt, boolean reuse) throws Exception {
        Path file = dir.resolve("nightly.yaml");
        Files.writeString(file, """
                name: nightly
                source: { folder: images }
                tasks:
                  - { name: caption, prompt: "%s", max_tokens: 8 }
                  - { name: kind, template: classify, labels: [photo, document, chart] }
                output: { csv: "out/nightly.csv" }
                inference: { base_url: "%s", concurrency: 8, retries: 2, backoff_ms: 100, timeout_s: 20 }
                run: { chunk_size: 4, partitions: 1, reuse: %s }
                """.formatted(captionPrompt, baseUrl, reuse));
        return file;
    }

    static List<CSVRecord> csv(Path file) throws Exception {
        try (Reader in = Files.newBufferedReader(file)) {
            return CSVFormat.RFC4180.builder().setHeader().setSkipHeaderRecord(true).get().parse(in).getRecords();
        }
    }
}
