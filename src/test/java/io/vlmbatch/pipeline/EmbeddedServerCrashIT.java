package io.vlmbatch.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.RunDatabase;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The embedded inference server is killed (-9) mid-run: the app says so, starts it again and the run completes. */
class EmbeddedServerCrashIT {
    private static final int IMAGES = 120;

    @Test
    void theRunCompletesAfterTheEmbeddedServerIsKilled(@TempDir Path work) throws Exception {
        ImageFiles.writeJpegs(work.resolve("images"), IMAGES, 320, 240);
        Path job = JobFiles.withInference(work, "crash", "base_url: embedded, concurrency: 8, retries: 1, timeout_s: 60", 4, 2);
        Launcher launcher = new Launcher(work.resolve("data"), work);
        Path log = work.resolve("run.log");
        try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
            Process run = launcher.start(log, "run", job.toString(), "--date", "2026-03-01");
            try {
                Polling.until(() -> run.isAlive() ? RestartIT.doneCount(db, "crash") : -1, n -> n < 0 || n >= 16);
                assertThat(run.isAlive()).as(Files.readString(log)).isTrue();
                List<ProcessHandle> servers = VlmServeProcess.embeddedIn(run);
                assertThat(servers).as("one embedded vlmserve").hasSize(1);
                servers.getFirst().destroyForcibly(); // SIGKILL
                servers.getFirst().onExit().get(30, TimeUnit.SECONDS);

                assertThat(run.waitFor(600, TimeUnit.SECONDS)).as("the run ends on its own").isTrue();
                String output = Files.readString(log);
                assertThat(run.exitValue()).as(output).isZero();
                assertThat(output).contains("the embedded inference server (port")
                        .contains("died with exit code").contains("--- last lines of").contains("restart 1 of 3")
                        .contains("the embedded inference server is back on port");
                long runId = db.runId("crash");
                assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId)).isEqualTo(IMAGES);
                assertThat(db.count("""
                        SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                        WHERE w.run_id = ? AND r.status = 'done'""", runId)).isEqualTo(IMAGES * 2L);
            } finally {
                if (run.isAlive()) run.destroyForcibly().waitFor();
            }
        }
    }
}
