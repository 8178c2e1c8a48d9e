package io.vlmbatch.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.RunDatabase;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `vlm-batch backfill` through the launcher against the real vlmserve (requests counted on its /metrics):
 * a range with one date run before by `run`, one whose folder is missing (it fails), then --reprocess
 * failed once the folder exists, then --reprocess completed after a prompt change (a new attempt over
 * every item: only the changed task is asked, the other one is copied from the ledger). Never more runs
 * at once than the job's max_active_runs. Bad ranges and modes are refused before anything is queued.
 */
class BackfillIT {
    @Test
    void backfillRunsARangeInItsThreeModes(@TempDir Path work) throws Exception {
        int seed = 0;
        for (String date : List.of("2026-04-01", "2026-04-02", "2026-04-04")) {
            Path dir = Files.createDirectories(work.resolve("images/" + date));
            for (int i = 0; i < 2; i++) Files.write(dir.resolve("img" + i + ".jpg"), ImageFiles.jpeg(160, 120, seed++));
        }
        try (VlmServeProcess server = VlmServeProcess.start(work)) {
            Path job = writeJob(work, server.baseUrl(), "Describe the image in one sentence.");
            Launcher launcher = new Launcher(work.resolve("data"), work);
            Launcher.Result first = launcher.run(300, "run", job.toString(), "--date", "2026-04-01");
            assertThat(first.exitCode()).as(first.output()).isZero();
            long before = server.requestsFinished();

            // none: 04-01 has a run (from `run`) and is skipped; 04-03 has no folder and fails
            Launcher.Result none = launcher.run(600, "backfill", job.toString(), "--from", "2026-04-01", "--to", "2026-04-04");
            assertThat(none.exitCode()).as(none.output()).isEqualTo(1);
            assertThat(none.output()).contains("4 runs, 3 to run, 1 skipped; at most 2 at once");
            assertThat(row(none, "2026-04-01")).contains("skipped").contains("completed (--reprocess completed reruns it)");
            assertThat(row(none, "2026-04-02")).contains("started").contains("success").contains("2 done");
            assertThat(row(none, "2026-04-03")).contains("started").contains("failed");
            assertThat(row(none, "2026-04-04")).contains("started").contains("success");
            assertThat(server.requestsFinished() - before).as("04-02 and 04-04: 2 images x 2 tasks each").isEqualTo(8);
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                assertThat(mostAtOnce(db)).as("max_active_runs: 2").isBetween(1, 2);
            }

            // failed: only 04-03, resumed now that its folder exists
            Path dir = Files.createDirectories(work.resolve("images/2026-04-03"));
            for (int i = 0; i < 2; i++) Files.write(dir.resolve("img" + i + ".jpg"), ImageFiles.jpeg(160, 120, seed++));
            before = server.requestsFinished();
            Launcher.Result failed = launcher.run(600, "backfill", job.toString(), "--from", "2026-04-01", "--to", "2026-04-04",
                    "--reprocess", "failed");
            assertThat(failed.exitCode()).as(failed.output()).isZero();
            assertThat(row(failed, "2026-04-03")).contains("restarted").contains("success").contains("2 done");
            for (String d : List.of("2026-04-01", "2026-04-02", "2026-04-04")) assertThat(row(failed, d)).contains("skipped");
            assertThat(server.requestsFinished() - before).isEqualTo(4);

            // completed: every date again after the caption's prompt changed: captions asked, labels copied
            writeJob(work, server.baseUrl(), "Describe the image in three words.");
            before = server.requestsFinished();
            Launcher.Result completed = launcher.run(600, "backfill", job.toString(), "--from", "2026-04-01", "--to", "2026-04-04",
                    "--reprocess=completed");
            assertThat(completed.exitCode()).as(completed.output()).isZero();
            for (String d : List.of("2026-04-01", "2026-04-02", "2026-04-03", "2026-04-04")) {
                assertThat(row(completed, d)).contains("rerun").contains("success");
            }
            assertThat(server.requestsFinished() - before).as("8 images, only the caption").isEqualTo(8);
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                assertThat(db.count("SELECT count(*) FROM vlm_result_history")).as("each item's two answers kept").isEqualTo(16);
                assertThat(db.count("""
                        SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id JOIN vlm_run v ON v.run_id = w.run_id
                        WHERE v.job_name = 'backfilled' AND r.task = 'kind' AND r.reused_from_run IS NOT NULL""")).isEqualTo(8);
                assertThat(db.count("SELECT count(*) FROM vlm_run WHERE job_name = 'backfilled' AND retry_of IS NOT NULL")).isEqualTo(4);
                assertThat(mostAtOnce(db)).isBetween(1, 2);
            }

            // hostile ranges and modes: refused, nothing queued
            long rows;
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                rows = db.count("SELECT count(*) FROM vlm_schedule_run");
            }
            for (List<String> bad : List.of(
                    List.of("--from", "2026-13-01", "--to", "2026-04-04"),
                    List.of("--from", "2026-04-04", "--to", "2026-04-01"),
                    List.of("--from", "2020-01-01", "--to", "2026-04-04"),
                    List.of("--from", "2026-04-01", "--to", "2026-04-04", "--reprocess", "all';DROP TABLE vlm_run;--"),
                    List.of("--from", "2026-04-01"))) {
                List<String> args = new ArrayList<>(List.of("backfill", job.toString()));
                args.addAll(bad);
                Launcher.Result r = launcher.run(120, args.toArray(String[]::new));
                assertThat(r.exitCode()).as(bad + ": " + r.output()).isEqualTo(2);
                assertThat(r.output()).as(String.valueOf(bad)).containsAnyOf("must be YYYY-MM-DD", "is before", "at most 366",
                        "must be none, failed or completed", "needs --from and --to");
            }
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                assertThat(db.count("SELECT count(*) FROM vlm_schedule_run")).isEqualTo(rows);
            }
        }
    }

    /** The row of the final table for a date. */
    private static String row(Launcher.Result r, String date) {
        return r.output().lines().filter(l -> l.startsWith(date + " ")).reduce((a, b) -> b)
                .orElseThrow(() -> new AssertionError("no row for " + date + " in:\n" + r.output()));
    }

    /** The most executions of the job that ran at the same moment, from Batch's start and end times. */
    private static int mostAtOnce(RunDatabase db) {
        List<Map<String, Object>> ex = db.rows("""
                SELECT e.start_time, e.end_time FROM batch_job_execution e JOIN batch_job_instance i ON i.job_instance_id = e.job_instance_id
                WHERE i.job_name = 'backfilled' AND e.start_time IS NOT NULL""");
        int most = 0;
        for (Map<String, Object> a : ex) {
            Timestamp t = (Timestamp) a.get("start_time");
            int at = 0;
            for (Map<String, Object> b : ex) {
                Timestamp s = (Timestamp) b.get("start_time"), e = (Timestamp) b.get("end_time");
                if (!s.after(t) && (e == null || e.after(t))) at++;
            }
            most = Math.max(most, at);
        }
        return most;
    }

    static Path writeJob(Path dir, String baseUrl, String captionPrompt) throws Exception {
        Path file = dir.resolve("backfilled.yaml");
        Files.writeString(file, """
                name: backfilled
                schedule: "0 0 * * *"
                scheduling: { max_active_runs: 2 }
                source: { folder: "images/{{ ds }}" }
                tasks:
                  - { name: caption, prompt: "%s", max_tokens: 8 }
                  - { name: kind, template: classify, labels: [photo, document, chart] }
                output: { csv: "out/{{ job }}-{{ ds }}.csv" }
                inference: { base_url: "%s", concurrency: 4, retries: 1, backoff_ms: 100, timeout_s: 20 }
                run: { chunk_size: 2, partitions: 1 }
                """.formatted(captionPrompt, baseUrl));
        return file;
    }
}
