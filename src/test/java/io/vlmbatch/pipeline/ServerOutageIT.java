package io.vlmbatch.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.RunDatabase;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The inference server dies mid-run: declared down after down_after_s, a cleanly failed step; `restart` once it is back. */
class ServerOutageIT {
    private static final int IMAGES = 240;

    @Test
    void runFailsCleanlyWhenTheServerDiesAndRestartCompletesWhenItIsBack(@TempDir Path work) throws Exception {
        ImageFiles.writeJpegs(work.resolve("images"), IMAGES, 320, 240);
        try (VlmServeProcess server = VlmServeProcess.start(work)) {
            Path job = JobFiles.withInference(work, "outage", "base_url: \"%s\", concurrency: 8, retries: 2, backoff_ms: 100, timeout_s: 10, down_after_s: 5"
                    .formatted(server.baseUrl()), 4, 2);
            Launcher launcher = new Launcher(work.resolve("data"), work);
            Path log = work.resolve("run.log");
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                Process run = launcher.start(log, "run", job.toString(), "--date", "2026-03-01");
                Polling.until(() -> run.isAlive() ? RestartIT.doneCount(db, "outage") : -1, n -> n < 0 || n >= 16);
                assertThat(run.isAlive()).as(Files.readString(log)).isTrue();
                server.kill();

                assertThat(run.waitFor(120, TimeUnit.SECONDS)).as("the run ends on its own").isTrue();
                String output = Files.readString(log);
                assertThat(run.exitValue()).as(output).isEqualTo(1);
                assertThat(output).contains("no inference endpoint answered for 5 s").contains("vlm-batch restart");
                // an expected failure is a line on the terminal; its stack trace goes to the log file only
                assertThat(output).as(output).doesNotContain("\tat ");
                assertThat(output.lines().filter(l -> l.contains("ERROR") || l.startsWith("error: ")))
                        .as(output).isNotEmpty().allMatch(l -> l.contains("no inference endpoint answered for 5 s"));
                Path logFile = work.resolve("data/logs/vlm-batch.log");
                assertThat(logFile).as("the full log").exists();
                assertThat(Files.readString(logFile)).contains("\tat ").contains("no inference endpoint answered for 5 s");
                long runId = db.runId("outage");
                assertThat(db.count("SELECT count(*) FROM batch_job_execution WHERE job_instance_id = ? AND status = 'FAILED'", runId))
                        .isEqualTo(1);
                assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'pending'", runId)).isPositive();
                assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'failed'", runId))
                        .as("an outage is not the images' fault").isZero();

                server.startProcess();
                Launcher.Result restart = launcher.run(300, "restart", job.toString(), "--date", "2026-03-01");

                assertThat(restart.exitCode()).as(restart.output()).isZero();
                assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId)).isEqualTo(IMAGES);
                assertThat(db.count("""
                        SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                        WHERE w.run_id = ? AND r.status = 'done'""", runId)).isEqualTo(IMAGES * 2);
            }
        }
    }
}
