package io.vlmbatch.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.RunDatabase;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.commons.csv.CSVRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `retry` against the real vlmserve (requests counted on its /metrics): two of five items fail because
 * their long note plus max_tokens exceeds the tiny model's 8192-token context (HTTP 400); a retry with a
 * smaller max_tokens asks only those two, and only their failed task (the done one is the same question);
 * the run's CSV then shows the latest answers, the replaced ones stay in the history; `--task` redoes one
 * task of every item.
 */
class RetryIT {
    @Test
    void retryAsksOnlyTheFailedItems(@TempDir Path work) throws Exception {
        Path images = work.resolve("images");
        Files.createDirectories(images);
        StringBuilder manifest = new StringBuilder("id,path,note\n");
        String longNote = "lorem ipsum dolor sit amet ".repeat(12).strip();
        for (int i = 0; i < 5; i++) {
            Files.write(images.resolve("p" + i + ".jpg"), ImageFiles.jpeg(64, 48, i));
            manifest.append("p").append(i).append(",images/p").append(i).append(".jpg,\"").append(i < 2 ? longNote : "plain").append("\"\n");
        }
        Files.writeString(work.resolve("items.csv"), manifest);
        try (VlmServeProcess server = VlmServeProcess.start(work)) {
            Path job = work.resolve("retryjob.yaml");
            Files.writeString(job, """
                    name: retryjob
                    source: { manifest: items.csv }
                    tasks:
                      - { name: caption, prompt: "Describe the image. {{ note }}", max_tokens: 8000 }
                      - { name: kind, template: classify, labels: [photo, document, chart], max_tokens: 4 }
                    output: { csv: "out/retryjob.csv" }
                    inference: { base_url: "%s", concurrency: 8, retries: 1, backoff_ms: 100, timeout_s: 120 }
                    run: { chunk_size: 5, partitions: 1 }
                    """.formatted(server.baseUrl()));
            Launcher launcher = new Launcher(work.resolve("data"), work);

            Launcher.Result night = launcher.run(600, "run", job.toString(), "--date", "2026-04-01");
            assertThat(night.exitCode()).as(night.output()).isZero();
            // the server counts answered requests: the 2 refused ones (HTTP 400) are not among them
            assertThat(server.requestsFinished()).isEqualTo(8);
            assertThat(night.output()).contains("inference: 10 requests");
            assertThat(night.output()).contains("3 done").contains("2 failed");

            long before = server.requestsFinished();
            Launcher.Result retry = launcher.run(300, "retry", job.toString(), "--date", "2026-04-01",
                    "--set", "tasks.caption.max_tokens=8");
            assertThat(retry.exitCode()).as(retry.output()).isZero();
            assertThat(retry.output()).contains("attempt 2 asks 2 items again");
            assertThat(server.requestsFinished() - before).as("the 2 failed captions only").isEqualTo(2);
            assertThat(retry.output()).contains("inference: 2 requests");
            List<CSVRecord> rows = LedgerReuseIT.csv(work.resolve("out/retryjob.csv"));
            assertThat(rows).hasSize(5);
            rows.forEach(r -> assertThat(r.get("status")).as(r.get("item_key")).isEqualTo("done"));
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                long runId = db.count("SELECT run_id FROM vlm_run WHERE job_name = 'retryjob' AND retry_of IS NULL");
                assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId)).isEqualTo(5);
                assertThat(db.count("""
                        SELECT count(*) FROM vlm_result_history h JOIN vlm_work_item w ON w.id = h.work_item_id
                        WHERE w.run_id = ? AND h.replaced_by_attempt = 2 AND h.task = 'caption' AND h.status = 'failed'
                          AND h.error LIKE '%context length%'""", runId)).as("the failed attempt 1 answers are kept").isEqualTo(2);
                assertThat(db.count("SELECT count(*) FROM vlm_run WHERE retry_of = ? AND attempt = 2", runId)).isEqualTo(1);
            }
            Launcher.Result status = launcher.run(120, "status", "retryjob");
            assertThat(status.output().lines().filter(l -> l.startsWith("retryjob")).count()).as(status.output()).isEqualTo(1);

            // nothing failed any more: a retry asks nothing
            before = server.requestsFinished();
            Launcher.Result none = launcher.run(300, "retry", job.toString(), "--date", "2026-04-01");
            assertThat(none.exitCode()).as(none.output()).isZero();
            assertThat(none.output()).contains("attempt 3 asks 0 items again");
            assertThat(server.requestsFinished()).isEqualTo(before);

            // --task redoes one task of every item, and only that task
            Launcher.Result kind = launcher.run(300, "retry", job.toString(), "--date", "2026-04-01", "--task", "kind");
            assertThat(kind.exitCode()).as(kind.output()).isZero();
            assertThat(server.requestsFinished() - before).isEqualTo(5);
            assertThat(LedgerReuseIT.csv(work.resolve("out/retryjob.csv"))).hasSize(5)
                    .allSatisfy(r -> assertThat(r.get("status")).isEqualTo("done"));

            // bad input: an unknown task, a --set the job file's rules refuse, no such run
            Launcher.Result noTask = launcher.run(60, "retry", job.toString(), "--date", "2026-04-01", "--task", "nosuch");
            assertThat(noTask.exitCode()).isEqualTo(2);
            assertThat(noTask.output()).contains("no such task");
            Launcher.Result badSet = launcher.run(60, "retry", job.toString(), "--date", "2026-04-01",
                    "--set", "tasks.caption.max_tokens='; DROP TABLE vlm_result; --");
            assertThat(badSet.exitCode()).isEqualTo(2);
            assertThat(badSet.output()).contains("--set tasks.caption.max_tokens");
            Launcher.Result noRun = launcher.run(120, "retry", job.toString(), "--date", "2026-04-02");
            assertThat(noRun.exitCode()).isEqualTo(1);
            assertThat(noRun.output()).contains("no run of job retryjob for 2026-04-02");
        }
    }
}
