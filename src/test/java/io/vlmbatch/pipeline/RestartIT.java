package io.vlmbatch.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.RunDatabase;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * kill -9 in the middle of a run, then `restart`: every image answered once, nothing lost, and the
 * server saw at most one chunk's requests twice (counted on its /metrics).
 */
class RestartIT {
    private static final int IMAGES = 240;
    private static final int TASKS = 2;
    private static final int CHUNK = 4;

    @Test
    void killedRunResumesWithoutLossOrDuplicates(@TempDir Path work) throws Exception {
        ImageFiles.writeJpegs(work.resolve("images"), IMAGES, 320, 240);
        try (VlmServeProcess server = VlmServeProcess.start(work)) {
            // One partition: exactly one chunk is in flight at any moment, the one a kill can lose.
            Path job = JobFiles.write(work, "restartjob", server.baseUrl(), CHUNK, 1, 3);
            Launcher launcher = new Launcher(work.resolve("data"), work);
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                Process run = launcher.start(work.resolve("run.log"), "run", job.toString(), "--date", "2026-02-01");
                long doneAtKill = Polling.until(() -> run.isAlive() ? doneCount(db, "restartjob") : -1, n -> n < 0 || n >= 24);
                assertThat(run.isAlive()).as("the run was still going at the kill\n" + Files.readString(work.resolve("run.log"))).isTrue();
                run.destroyForcibly(); // SIGKILL: no shutdown hook, the execution stays STARTED
                run.waitFor();
                long runId = db.runId("restartjob");
                assertThat(doneAtKill).isLessThan(IMAGES);
                assertThat(db.count("SELECT count(*) FROM batch_job_execution WHERE job_instance_id = ? AND status = 'STARTED'", runId))
                        .isEqualTo(1);

                Launcher.Result restart = launcher.run(300, "restart", job.toString(), "--date", "2026-02-01");

                assertThat(restart.exitCode()).as(restart.output()).isZero();
                assertThat(restart.output()).contains("marking it FAILED").contains("COMPLETED");
                assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId)).isEqualTo(IMAGES);
                assertThat(db.count("""
                        SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                        WHERE w.run_id = ? AND r.status = 'done'""", runId)).isEqualTo(IMAGES * TASKS);
                long answered = server.requestsFinished();
                // A request retried after a timeout may have been answered twice by the server; each
                // retry is logged, so it is counted apart from the chunk that the kill made us redo.
                long retries = retries(Files.readString(work.resolve("run.log"))) + retries(restart.output());
                System.out.printf("RestartIT: killed at %d/%d images done; server answered %d requests for %d (image, task) pairs; %d client retries%n",
                        doneAtKill, IMAGES, answered, IMAGES * TASKS, retries);
                assertThat(answered - (long) IMAGES * TASKS - retries)
                        .as("requests answered twice, retries aside (at most one chunk of %d images x %d tasks)", CHUNK, TASKS)
                        .isBetween(-retries, (long) CHUNK * TASKS);
            }
            long csvRows;
            try (var in = Files.newBufferedReader(work.resolve("out/restartjob.csv"));
                 var parser = org.apache.commons.csv.CSVFormat.RFC4180.builder().setHeader().setSkipHeaderRecord(true).get().parse(in)) {
                csvRows = parser.stream().count();
            }
            assertThat(csvRows).isEqualTo(IMAGES);
        }
    }

    private static long retries(String output) {
        return output.lines().filter(l -> l.contains("/v1/chat/completions failed") && l.contains(", retry ")).count();
    }

    static long doneCount(RunDatabase db, String job) {
        try {
            Long runId = db.runId(job);
            return runId == null ? 0 : db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId);
        } catch (RuntimeException tablesNotThereYet) {
            return 0;
        }
    }
}
