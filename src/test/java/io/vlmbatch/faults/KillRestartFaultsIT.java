package io.vlmbatch.faults;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.RunDatabase;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * kill -9 at random moments of a three-task run, alternately of the app (the `vlm-batch run` /
 * `restart` JVM) and of the inference server, each followed by what an operator does: `restart`
 * (after a server kill the server is started again first; the run either rides the outage out on
 * its retries or fails cleanly and is restarted). Per kill: results lost, results stored twice
 * (a done row whose row version changed), and requests the server answered beyond the results
 * stored and the retries logged, against the bound of one chunk per partition.
 *
 * <p>CI: 2 kills over 60 images. Full (bench/faults/run-all): -Dfaults.kills=12 -Dfaults.images=150.
 */
class KillRestartFaultsIT {
    private static final int CHUNK = 4;
    private static final int PARTITIONS = 2;
    private static final String DATE = "2026-05-01";

    record Snapshot(long answered, Map<String, String> done, long retries) {}

    @Test
    void killsOfTheAppAndTheServerLoseNothingAndStoreNothingTwice(@TempDir Path work) throws Exception {
        int images = FaultReport.setting("images", 60);
        int kills = FaultReport.setting("kills", 2);
        long seed = FaultReport.setting("seed", 15);
        int tasks = FaultJob.TASKS.size();
        long total = (long) images * tasks;
        int bound = CHUNK * tasks * PARTITIONS;
        Random random = new Random(seed);
        ImageFiles.writeJpegs(work.resolve("images"), images, 320, 240);
        List<Path> logs = new ArrayList<>();
        List<List<Object>> rows = new ArrayList<>();
        List<Snapshot> snapshots = new ArrayList<>();
        List<String> kinds = new ArrayList<>();
        List<String> outcomes = new ArrayList<>();
        long[] deadServerAnswers = {0};
        long started = System.nanoTime();
        try (VlmServeProcess server = VlmServeProcess.start(work)) {
            Path job = FaultJob.write(work, "kills", "{ folder: images }", "base_url: \"%s\", concurrency: 8, retries: 3, backoff_ms: 200, timeout_s: 10, down_after_s: 8"
                    .formatted(server.baseUrl()), CHUNK, PARTITIONS);
            Launcher launcher = new Launcher(work.resolve("data"), work);
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                Path log = work.resolve("run-0.log");
                logs.add(log);
                Process app = launcher.start(log, "run", job.toString(), "--date", DATE);
                snapshots.add(new Snapshot(0, Map.of(), 0));
                for (int k = 1; k <= kills; k++) {
                    boolean killApp = k % 2 == 1;
                    long target = Math.min(total - 20, FaultJob.doneCount(db, "kills") + 6 + random.nextInt(Math.max(1, (int) (total / (kills + 2)))));
                    Process running = app;
                    Waiting.until(() -> !running.isAlive() || FaultJob.doneCount(db, "kills") >= target, Duration.ofMinutes(5));
                    if (!app.isAlive()) {
                        outcomes.add("run ended (exit " + app.exitValue() + ") before kill " + k);
                        break;
                    }
                    String outcome;
                    if (killApp) {
                        app.destroyForcibly(); // SIGKILL: no shutdown hook, the execution stays STARTED
                        app.waitFor();
                        Thread.sleep(500); // requests the server was still answering for the dead app end
                        snapshots.add(snapshot(db, server, deadServerAnswers[0], logs));
                        outcome = "restart";
                    } else {
                        long answered = server.requestsFinished();
                        server.kill();
                        deadServerAnswers[0] += answered;
                        snapshots.add(new Snapshot(deadServerAnswers[0], FaultJob.doneResults(db, "kills"), retries(logs)));
                        Thread.sleep(random.nextInt(2000));
                        server.startProcess();
                        // the run rides the outage out on its retries, or fails cleanly (down_after_s) and is restarted
                        long before = FaultJob.doneCount(db, "kills");
                        Process r = app;
                        Waiting.until(() -> !r.isAlive() || FaultJob.doneCount(db, "kills") > before, Duration.ofMinutes(3));
                        if (app.isAlive() || app.exitValue() == 0) {
                            outcome = "rode it out";
                        } else {
                            assertThat(app.exitValue()).as(Files.readString(logs.getLast())).isEqualTo(1);
                            assertThat(Files.readString(logs.getLast())).contains("vlm-batch restart");
                            outcome = "failed cleanly (exit 1), restart";
                        }
                    }
                    kinds.add(killApp ? "app" : "server");
                    outcomes.add(outcome);
                    if (outcome.endsWith("restart")) {
                        log = work.resolve("run-" + k + ".log");
                        logs.add(log);
                        app = launcher.start(log, "restart", job.toString(), "--date", DATE);
                    }
                }
                assertThat(app.waitFor(10, TimeUnit.MINUTES)).as("the last run ends").isTrue();
                if (app.exitValue() != 0) { // a server kill late in a run: one more restart finishes it
                    log = work.resolve("run-final.log");
                    logs.add(log);
                    app = launcher.start(log, "restart", job.toString(), "--date", DATE);
                    assertThat(app.waitFor(10, TimeUnit.MINUTES)).isTrue();
                }
                assertThat(app.exitValue()).as(Files.readString(logs.getLast())).isZero();
                Snapshot end = snapshot(db, server, deadServerAnswers[0], logs);
                snapshots.add(end);

                long runId = db.runId("kills");
                assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId)).isEqualTo(images);
                assertThat(end.done()).hasSize((int) total);
                assertThat(FaultJob.csvRows(work.resolve("out/kills.csv"))).isEqualTo(images);

                long lostTotal = 0;
                long twiceTotal = 0;
                int overBound = 0;
                // Kill i threw away the answers the server gave in the segment that it ended and that were
                // never stored: those requests are asked again. Results done at the kill must still be done,
                // with the same row version, at the next snapshot.
                for (int i = 1; i < snapshots.size() - 1; i++) {
                    Snapshot before = snapshots.get(i - 1);
                    Snapshot at = snapshots.get(i);
                    Snapshot next = snapshots.get(i + 1);
                    long lost = at.done().keySet().stream().filter(key -> !next.done().containsKey(key)).count();
                    long twice = at.done().entrySet().stream()
                            .filter(e -> next.done().containsKey(e.getKey()) && !next.done().get(e.getKey()).equals(e.getValue())).count();
                    long answered = at.answered() - before.answered();
                    long stored = at.done().size() - before.done().size();
                    long retried = at.retries() - before.retries();
                    long redone = answered - stored - retried;
                    lostTotal += lost;
                    twiceTotal += twice;
                    if (redone > bound) overBound++;
                    rows.add(List.of(i, kinds.get(i - 1), at.done().size() + "/" + total, outcomes.get(i - 1), lost, twice,
                            answered, stored, retried, redone, bound));
                }
                Snapshot last = snapshots.get(snapshots.size() - 2);
                long lastSegmentUnstored = (end.answered() - last.answered()) - (end.done().size() - last.done().size())
                        - (end.retries() - last.retries());
                new FaultReport("kills", "kill -9 of the app and of the inference server during a 3-task run, each followed by restart")
                        .put("command", "mvn -B -ntp -o verify -Dtest=NONE -Dsurefire.failIfNoSpecifiedTests=false -Dit.test=KillRestartFaultsIT"
                                + " -Dfaults.kills=" + kills + " -Dfaults.images=" + images + " -Dfaults.seed=" + seed)
                        .put("images", images).put("tasks", tasks).put("chunk_size", CHUNK).put("partitions", PARTITIONS)
                        .put("kills", kinds.size()).put("app_kills", kinds.stream().filter("app"::equals).count())
                        .put("server_kills", kinds.stream().filter("server"::equals).count())
                        .put("lost_total", lostTotal).put("stored_twice_total", twiceTotal)
                        .put("kills_over_the_bound", overBound)
                        .put("requests_answered_total", end.answered()).put("results_total", total)
                        .put("retries_logged_total", end.retries())
                        .put("after_the_last_kill_answered_not_stored", lastSegmentUnstored)
                        .put("wall_s", (System.nanoTime() - started) / 1_000_000_000L)
                        .put("note", "per kill, over the stretch of the run that the kill ended: answered = requests the server "
                                + "answered, stored = results stored, retries = client retries logged, redone = answered - stored - "
                                + "retries (answers the kill threw away, asked again after it); the server's count is read just "
                                + "before a server kill, so answers in its last milliseconds are not counted")
                        .write(List.of("kill", "of", "done at kill", "then", "lost", "stored twice", "answered", "stored",
                                "retries", "redone", "bound"), rows);
                assertThat(kinds).as("every kill happened during the run: " + outcomes).hasSize(kills);
                assertThat(lostTotal).isZero();
                assertThat(twiceTotal).isZero();
                assertThat(overBound).as("kills whose redone requests exceed one chunk per partition").isZero();
            }
        }
    }

    private static Snapshot snapshot(RunDatabase db, VlmServeProcess server, long deadServerAnswers, List<Path> logs) throws Exception {
        return new Snapshot(deadServerAnswers + server.requestsFinished(), FaultJob.doneResults(db, "kills"), retries(logs));
    }

    private static long retries(List<Path> logs) throws java.io.IOException {
        long n = 0;
        for (Path l : logs) n += FaultJob.retries(l);
        return n;
    }
}
