package io.vlmbatch.faults;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.RunDatabase;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The embedded inference server is restarted at most 3 times: killed a fourth time, it stays down, the
 * run fails cleanly (exit 1, with the restart hint) and `restart` (a new process, a new server) completes it.
 */
class EmbeddedServerRestartCapIT {
    private static final int IMAGES = 100;

    private static long count(Path log, String text) {
        try {
            return Files.readAllLines(log).stream().filter(l -> l.contains(text)).count();
        } catch (java.io.IOException e) {
            return 0;
        }
    }

    @Test
    void afterThreeRestartsTheRunFailsCleanlyAndRestartCompletesIt(@TempDir Path work) throws Exception {
        ImageFiles.writeJpegs(work.resolve("images"), IMAGES, 160, 120);
        Path job = FaultJob.write(work, "cap", "{ folder: images }",
                "base_url: embedded, concurrency: 4, retries: 1, backoff_ms: 100, timeout_s: 30, down_after_s: 5", 4, 1);
        Launcher launcher = new Launcher(work.resolve("data"), work);
        Path log = work.resolve("run.log");
        try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
            Process run = launcher.start(log, "run", job.toString(), "--date", "2026-06-01");
            try {
                for (int kill = 1; kill <= 4; kill++) {
                    long backs = kill - 1;
                    // kill as soon as the server (first start, or restart kill-1) has answered something
                    long doneBefore = FaultJob.doneCount(db, "cap");
                    assertThat(Waiting.until(() -> !run.isAlive() || count(log, "is back on port") >= backs
                            && FaultJob.doneCount(db, "cap") > doneBefore, Duration.ofMinutes(4)))
                            .as("server start %d answered\n%s", kill, Files.readString(log)).isTrue();
                    assertThat(run.isAlive()).as("the run still going before kill %d\n%s", kill, Files.readString(log)).isTrue();
                    List<ProcessHandle> servers = VlmServeProcess.embeddedIn(run);
                    assertThat(servers).as("one embedded vlmserve").hasSize(1);
                    servers.getFirst().destroyForcibly();
                    servers.getFirst().onExit().get(30, TimeUnit.SECONDS);
                }
                assertThat(run.waitFor(5, TimeUnit.MINUTES)).as("the run ends on its own").isTrue();
                String output = Files.readString(log);
                assertThat(run.exitValue()).as(output).isEqualTo(1);
                assertThat(output).contains("restart 1 of 3").contains("restart 2 of 3").contains("restart 3 of 3")
                        .contains("not starting it again: it died 4 times").contains("vlm-batch restart")
                        .doesNotContain("restart 4 of 3");
                assertThat(VlmServeProcess.embeddedIn(run)).as("no server left behind").isEmpty();
                long runId = db.runId("cap");
                assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'failed'", runId))
                        .as("a dead server is not the images' fault").isZero();
                long doneAtFailure = db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId);
                assertThat(doneAtFailure).isLessThan(IMAGES);

                Launcher.Result restart = launcher.run(600, "restart", job.toString(), "--date", "2026-06-01");
                assertThat(restart.exitCode()).as(restart.output()).isZero();
                assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId)).isEqualTo(IMAGES);
                System.out.printf("EmbeddedServerRestartCapIT: %d of %d images done when the run failed after the 4th death%n",
                        doneAtFailure, IMAGES);
            } finally {
                if (run.isAlive()) run.destroyForcibly().waitFor();
            }
        }
    }
}
