package io.vlmbatch.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.RabbitBroker;
import io.vlmbatch.testsupport.RunDatabase;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Remote partitioning end to end with real parts: a real RabbitMQ, real `vlm-batch worker` processes, the
 * real inference server (tiny random model), the embedded PostgreSQL as the shared job repository. Faults
 * are real too: kill -9 of a worker and of an inference server mid-run, a dead URL in the endpoint list,
 * the broker restarted mid-run.
 */
class RemoteWorkersIT {
    private final List<Process> processes = new ArrayList<>();

    @AfterEach
    void stopProcesses() throws InterruptedException {
        for (Process p : processes) {
            p.destroy();
            if (!p.waitFor(20, TimeUnit.SECONDS)) p.destroyForcibly().waitFor();
        }
    }

    private static String deadUrl() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return "http://127.0.0.1:" + s.getLocalPort();
        }
    }

    private static Path job(Path dir, String name, String baseUrls, int partitions) throws Exception {
        List<String> tasks = List.of(JobFiles.CAPTION_AND_KIND.get(0), "{ name: text, template: ocr, max_tokens: 8 }", JobFiles.CAPTION_AND_KIND.get(1));
        return JobFiles.job(dir, name, tasks, "out/" + name + ".csv",
                "base_url: [ %s ], concurrency: 8, retries: 1, backoff_ms: 200, timeout_s: 60".formatted(baseUrls),
                "chunk_size: 4, partitions: %d, workers: remote, worker_timeout: 10s".formatted(partitions));
    }

    /** A worker process; returns once it listens on the queue. */
    private Process worker(Launcher launcher, Path log) throws Exception {
        Process p = launcher.start(log, "worker", "--concurrency", "2");
        processes.add(p);
        Polling.until(() -> {
            try {
                return !p.isAlive() || Files.readString(log).contains("taking partitions from queue") ? 1 : 0;
            } catch (java.io.IOException e) {
                return 0;
            }
        }, v -> v == 1);
        assertThat(p.isAlive()).as(Files.readString(log)).isTrue();
        return p;
    }

    /**
     * Waits for the run (of 2026-03-01) to end; one that failed cleanly (a partition lost too often) is
     * restarted, which must complete it. Then it has one COMPLETED execution and every item answered
     * once. Returns the output of the run and of the restart, if any.
     */
    private static String assertCompletes(Launcher launcher, Process run, Path runLog, Path job, RunDatabase db, String name, int images,
                                          Path... workerLogs) throws Exception {
        assertThat(run.waitFor(300, TimeUnit.SECONDS)).as("the run ends on its own").isTrue();
        String output = Files.readString(runLog);
        if (run.exitValue() != 0) {
            Launcher.Result restart = launcher.run(300, "restart", job.toString(), "--date", "2026-03-01");
            output += restart.output();
            assertThat(restart.exitCode()).as(output).isZero();
        }
        StringBuilder logs = new StringBuilder(output);
        for (Path log : workerLogs) logs.append(Files.readString(log));
        long runId = db.runId(name);
        assertThat(db.count("SELECT count(*) FROM batch_job_execution WHERE job_instance_id = ? AND status = 'COMPLETED'", runId))
                .as(logs.toString()).isEqualTo(1);
        assertEveryItemAnsweredOnce(db, runId, images);
        return output;
    }

    private static void assertEveryItemAnsweredOnce(RunDatabase db, long runId, int images) {
        assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ?", runId)).isEqualTo(images);
        assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId)).isEqualTo(images);
        assertThat(db.count("""
                SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                WHERE w.run_id = ? AND r.status = 'done'""", runId)).as("no result lost").isEqualTo(images * 3L);
        assertThat(db.count("""
                SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id WHERE w.run_id = ?""", runId))
                .as("no result stored twice").isEqualTo(images * 3L);
        assertThat(db.count("""
                SELECT count(*) FROM (SELECT r.work_item_id, r.task FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                WHERE w.run_id = ? GROUP BY 1, 2 HAVING count(*) > 1) twice""", runId)).isZero();
    }

    @Test
    void twoWorkersAndTwoEndpointsCompleteARunThroughAKilledWorkerAKilledEndpointAndADeadUrl(@TempDir Path work) throws Exception {
        int images = 240;
        ImageFiles.writeJpegs(work.resolve("images"), images, 160, 120);
        try (RabbitBroker broker = RabbitBroker.start(work.resolve("rabbit"));
             VlmServeProcess a = VlmServeProcess.start(work); VlmServeProcess b = VlmServeProcess.start(work)) {
            String dead = deadUrl();
            Path job = job(work, "remote", "\"%s\", \"%s\", \"%s\"".formatted(a.baseUrl(), dead, b.baseUrl()), 24);
            Launcher launcher = new Launcher(work.resolve("data"), work).withJavaOpts(broker.javaOpts() + " -Dvlm.worker.heartbeat=2s");
            Path logA = work.resolve("worker-a.log");
            Path logB = work.resolve("worker-b.log");
            Process workerA = worker(launcher, logA);
            worker(launcher, logB);
            Path runLog = work.resolve("run.log");
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                Process run = launcher.start(runLog, "run", job.toString(), "--date", "2026-03-01");
                processes.add(run);
                // mid-run: worker A holds a partition and some items are done
                Polling.until(() -> {
                    try {
                        boolean aBusy = Files.readString(logA).contains("runs partition");
                        return !run.isAlive() ? -1 : aBusy ? RestartIT.doneCount(db, "remote") : 0;
                    } catch (java.io.IOException e) {
                        return 0;
                    }
                }, n -> n < 0 || n >= 30);
                assertThat(run.isAlive()).as(Files.readString(runLog)).isTrue();
                workerA.destroyForcibly().waitFor(); // kill -9
                a.kill();

                String output = assertCompletes(launcher, run, runLog, job, db, "remote", images);
                long runId = db.runId("remote");
                String logs = Files.readString(logA) + Files.readString(logB);
                // the workers ask the servers: their pools took the dead URL and the killed server out
                assertThat(logs).contains("taken out of the pool");
                assertThat(Files.readString(logB)).contains("ran partition infer-worker:p");
                // every partition ended COMPLETED on some worker; the one worker A held when killed shows as LOST
                assertThat(db.count("SELECT count(DISTINCT partition_name) FROM vlm_partition_run WHERE run_id = ? AND status = 'COMPLETED'",
                        runId)).as(logs).isEqualTo(24);
                assertThat(db.count("SELECT count(*) FROM vlm_partition_run WHERE run_id = ? AND ended_at IS NULL", runId))
                        .as("no claim left open").isZero();
                long lost = db.count("SELECT count(*) FROM vlm_partition_run WHERE run_id = ? AND status = 'LOST'", runId);
                // killed between its partition's end and its own record of it, worker A lost nothing: the manager
                // closed that claim instead
                if (lost == 0) assertThat(output).as(logs).contains("ended without their worker recording it");

                Launcher.Result status = launcher.run(120, "status", "remote");
                assertThat(status.exitCode()).as(status.output()).isZero();
                assertThat(status.output()).contains("workers of remote 2026-03-01:");
                if (lost > 0) assertThat(status.output()).contains("lost with it");
            }
        }
    }

    @Test
    void aBrokerRestartMidRunIsSurvivedOrRestartCompletesTheRun(@TempDir Path work) throws Exception {
        int images = 80;
        ImageFiles.writeJpegs(work.resolve("images"), images, 160, 120);
        try (RabbitBroker broker = RabbitBroker.start(work.resolve("rabbit")); VlmServeProcess a = VlmServeProcess.start(work)) {
            Path job = job(work, "brokerdown", "\"%s\"".formatted(a.baseUrl()), 16);
            Launcher launcher = new Launcher(work.resolve("data"), work).withJavaOpts(broker.javaOpts() + " -Dvlm.worker.heartbeat=2s");
            Path logW = work.resolve("worker.log");
            worker(launcher, logW);
            Path runLog = work.resolve("run.log");
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                Process run = launcher.start(runLog, "run", job.toString(), "--date", "2026-03-01");
                processes.add(run);
                Polling.until(() -> run.isAlive() ? RestartIT.doneCount(db, "brokerdown") : -1, n -> n < 0 || n >= 12);
                assertThat(run.isAlive()).as(Files.readString(runLog)).isTrue();
                broker.restart();

                assertCompletes(launcher, run, runLog, job, db, "brokerdown", images, logW);
                // the worker's terminal: one line that the broker went away, one that it is back, no retry loop
                String back = "RabbitMQ at 127.0.0.1:" + broker.port() + " answers again";
                Polling.until(() -> text(logW).contains(back) ? 1 : 0, n -> n == 1);
                assertThat(text(logW)).doesNotContain("Failed to check/redeclare").doesNotContain("\tat ");
            }
        }
    }

    private static String text(Path file) {
        try {
            return Files.readString(file);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
