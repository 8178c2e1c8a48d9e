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

/**
 * One ownership rule across processes on one PostgreSQL: a run executed by a real process that records
 * itself as another host ("host-b", heartbeat every second) is refused while its heartbeat is fresh,
 * taken over once it is stale, and taken over by `restart --force` while its owner still beats.
 */
class RunOwnershipIT {
    // enough that an owner outlasts another CLI process's start on a loaded machine: 160 images ended
    // in ~17 s at load 20 on 2 cores, before the restart --force process got to its takeover
    private static final int IMAGES = 400;
    private static final int TASKS = 2;
    private static final String OTHER_HOST = "-Dvlm.run.host=host-b -Dvlm.run.heartbeat=1s";

    @Test
    void liveOwnerOnAnotherHostIsRefusedStaleOneIsTakenOverForceOverridesALiveOne(@TempDir Path work) throws Exception {
        ImageFiles.writeJpegs(work.resolve("images"), IMAGES, 160, 120);
        try (VlmServeProcess server = VlmServeProcess.start(work)) {
            Path job = JobFiles.write(work, "ownedjob", server.baseUrl(), 2, 1, 3);
            // each date lists the same images: with the ledger on, the second date would reuse the first
            // date's answers and end before the forced restart could take it over
            Files.writeString(job, Files.readString(job).replace("run: { chunk_size", "run: { reuse: false, chunk_size"));
            Launcher here = new Launcher(work.resolve("data"), work).withJavaOpts("-Dvlm.run.stale-timeout=4s -Dvlm.run.heartbeat=1s");
            Launcher hostB = new Launcher(work.resolve("data"), work).withJavaOpts(OTHER_HOST);
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                // live owner on another host: refused; then it dies (kill -9) and, once stale, is taken over
                Process a = hostB.start(work.resolve("a.log"), "run", job.toString(), "--date", "2026-03-01");
                waitForProgress(db, a, "2026-03-01", work.resolve("a.log"));
                Launcher.Result refused = here.run(120, "restart", job.toString(), "--date", "2026-03-01");
                assertThat(a.isAlive()).as("the owner was alive throughout the refused restart").isTrue();
                assertThat(refused.exitCode()).as(refused.output()).isEqualTo(1);
                assertThat(refused.output()).contains("is still running").contains("on host-b").contains("last heartbeat");

                a.destroyForcibly().waitFor();
                Thread.sleep(4_500); // past the 4 s stale timeout of `here`
                Launcher.Result takenOver = here.run(300, "restart", job.toString(), "--date", "2026-03-01");
                assertThat(takenOver.exitCode()).as(takenOver.output()).isZero();
                assertThat(takenOver.output()).contains("by a process that is gone").contains("on host-b").contains("COMPLETED");
                assertComplete(db, "2026-03-01");

                // live owner, forced: the operator is told whom it overrides; the run moves to the forcing
                // process and the overridden owner gives it up (it is not killed: it learns from its heartbeat)
                Process b = hostB.start(work.resolve("b.log"), "run", job.toString(), "--date", "2026-03-02");
                waitForProgress(db, b, "2026-03-02", work.resolve("b.log"));
                Launcher forcing = new Launcher(work.resolve("data"), work); // default 30 s stale timeout: host-b is alive
                Path forcedLog = work.resolve("forced.log");
                Process forced = forcing.start(forcedLog, "restart", job.toString(), "--date", "2026-03-02", "--force");
                try {
                    Polling.until(() -> ownerPid(db, "2026-03-02") == forced.pid() ? 1 : 0, n -> n == 1);
                    assertThat(Files.readString(forcedLog)).contains("--force: taking execution")
                            .contains("from its live owner (pid " + b.pid() + " on host-b, last heartbeat");
                    assertThat(b.waitFor(120, TimeUnit.SECONDS)).as("the overridden owner ends\n" + Files.readString(work.resolve("b.log"))).isTrue();
                    System.out.println("RunOwnershipIT: overridden owner's output:\n" + Files.readString(work.resolve("b.log")));
                    assertThat(Files.readString(work.resolve("b.log"))).contains("taken over");
                    assertThat(b.exitValue()).as("the overridden owner does not report success").isNotZero();
                    assertThat(forced.waitFor(300, TimeUnit.SECONDS)).isTrue();
                    assertThat(forced.exitValue()).as(Files.readString(forcedLog)).isZero();
                    assertComplete(db, "2026-03-02");
                } finally {
                    forced.destroyForcibly().waitFor();
                    b.destroyForcibly().waitFor();
                }
            }
        }
    }

    private static void waitForProgress(RunDatabase db, Process owner, String date, Path log) throws Exception {
        long done = Polling.until(() -> owner.isAlive() ? doneCount(db, date) : -1, n -> n < 0 || n >= 2);
        assertThat(done).as("the owner made progress and is still running\n" + Files.readString(log)).isGreaterThanOrEqualTo(2);
    }

    private static long doneCount(RunDatabase db, String date) {
        try {
            return db.count("""
                    SELECT count(*) FROM vlm_work_item w JOIN vlm_run r ON r.run_id = w.run_id
                    WHERE r.job_name = 'ownedjob' AND r.logical_date = ?::date AND w.status = 'done'""", date);
        } catch (RuntimeException tablesNotThereYet) {
            return 0;
        }
    }

    private static long ownerPid(RunDatabase db, String date) {
        return db.count("SELECT coalesce(max(owner_pid), 0) FROM vlm_run WHERE job_name = 'ownedjob' AND logical_date = ?::date", date);
    }

    private static void assertComplete(RunDatabase db, String date) {
        long runId = db.count("SELECT run_id FROM vlm_run WHERE job_name = 'ownedjob' AND logical_date = ?::date", date);
        assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId)).isEqualTo(IMAGES);
        assertThat(db.count("""
                SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                WHERE w.run_id = ? AND r.status = 'done'""", runId)).isEqualTo(IMAGES * TASKS);
        assertThat(db.count("SELECT count(*) FROM vlm_run WHERE run_id = ? AND owner_pid IS NULL", runId))
                .as("the owner is released at the end").isEqualTo(1);
    }
}
