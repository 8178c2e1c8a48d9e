package io.vlmbatch.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.RunDatabase;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A run over a pool of real inference servers (tiny random model): shared work, a dead URL, a server killed mid-run. */
class EndpointPoolIT {
    private static String deadUrl() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return "http://127.0.0.1:" + s.getLocalPort();
        }
    }

    private static void assertCompleteOnce(RunDatabase db, long runId, int images) {
        assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId)).isEqualTo(images);
        assertThat(db.count("""
                SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                WHERE w.run_id = ? AND r.status = 'done'""", runId)).as("no result lost").isEqualTo(images * 2L);
        assertThat(db.count("""
                SELECT count(*) FROM (SELECT r.work_item_id, r.task FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                WHERE w.run_id = ? GROUP BY 1, 2 HAVING count(*) > 1) twice""", runId)).as("none stored twice").isZero();
    }

    @Test
    void twoEndpointsShareTheWorkAndADeadUrlInTheListDoesNotStopTheRun(@TempDir Path work) throws Exception {
        int images = 40;
        ImageFiles.writeJpegs(work.resolve("images"), images, 320, 240);
        try (VlmServeProcess a = VlmServeProcess.start(work); VlmServeProcess b = VlmServeProcess.start(work)) {
            String dead = deadUrl();
            Path job = JobFiles.withInference(work, "pool", "base_url: [ \"%s\", \"%s\", \"%s/v1\" ], concurrency: 8, retries: 0, timeout_s: 60"
                    .formatted(dead, a.baseUrl(), b.baseUrl()), 4, 2);
            Launcher launcher = new Launcher(work.resolve("data"), work);
            Launcher.Result run = launcher.run(600, "run", job.toString(), "--date", "2026-03-01");

            assertThat(run.exitCode()).as(run.output()).isZero();
            // each server counts what it answered: both took part (the dead one got none, with retries: 0)
            assertThat(a.requestsFinished()).as(run.output()).isPositive();
            assertThat(b.requestsFinished()).as(run.output()).isPositive();
            assertThat(a.requestsFinished() + b.requestsFinished()).isGreaterThanOrEqualTo(images * 2L);
            assertThat(run.output()).contains("inference: " + images * 2 + " requests")
                    .contains(a.baseUrl() + ": ").contains(b.baseUrl() + ": ").contains(dead + ": ").contains("taken out of the pool");
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                assertCompleteOnce(db, db.runId("pool"), images);
            }
        }
    }

    @Test
    void killingOneEndpointMidRunLosesNothingAndStoresNothingTwice(@TempDir Path work) throws Exception {
        int images = 120;
        ImageFiles.writeJpegs(work.resolve("images"), images, 320, 240);
        try (VlmServeProcess a = VlmServeProcess.start(work); VlmServeProcess b = VlmServeProcess.start(work)) {
            Path job = JobFiles.withInference(work, "poolkill", "base_url: [ \"%s\", \"%s\" ], concurrency: 8, retries: 1, timeout_s: 60"
                    .formatted(a.baseUrl(), b.baseUrl()), 4, 2);
            Launcher launcher = new Launcher(work.resolve("data"), work);
            Path log = work.resolve("run.log");
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                Process run = launcher.start(log, "run", job.toString(), "--date", "2026-03-01");
                Polling.until(() -> run.isAlive() ? RestartIT.doneCount(db, "poolkill") : -1, n -> n < 0 || n >= 16);
                assertThat(run.isAlive()).as(Files.readString(log)).isTrue();
                long bBefore = b.requestsFinished();
                a.kill();

                assertThat(run.waitFor(600, TimeUnit.SECONDS)).as("the run ends on its own").isTrue();
                String output = Files.readString(log);
                assertThat(run.exitValue()).as(output).isZero();
                assertThat(output).contains("taken out of the pool");
                assertThat(b.requestsFinished()).as("the survivor took over").isGreaterThan(bBefore);
                long runId = db.runId("poolkill");
                assertThat(db.count("SELECT count(*) FROM batch_job_execution WHERE job_instance_id = ? AND status = 'COMPLETED'", runId))
                        .isEqualTo(1);
                assertCompleteOnce(db, runId, images);
            }
        }
    }
}
