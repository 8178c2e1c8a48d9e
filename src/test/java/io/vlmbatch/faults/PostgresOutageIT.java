package io.vlmbatch.faults;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.db.EmbeddedPostgresServer;
import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * PostgreSQL (a real server this test starts, the one the app's data folder names) is stopped ("fast":
 * sessions cut, transactions aborted) in the middle of a run and started again on the same port after a
 * while. The run either survives or fails cleanly; `restart` then completes it with nothing lost and
 * nothing stored twice. One round per outage length (CI: 5 s; full: -Dfaults.pg.outages=5,20,60).
 * This JVM plays the process that started the server (it holds zonky's lock on the data folder, as a
 * long-lived `serve` would): the run and `restart` join it, and must leave it running when they exit.
 */
class PostgresOutageIT {
    private static final int CHUNK = 4;
    private static final int PARTITIONS = 2;

    @Test
    void aRunOutlivesOrFailsCleanlyThroughAPostgresOutageAndRestartCompletesIt(@TempDir Path work) throws Exception {
        int images = FaultReport.setting("images", 60);
        List<Integer> outages = Arrays.stream(System.getProperty("faults.pg.outages", "5").split(",")).map(String::strip)
                .map(Integer::parseInt).toList();
        long total = (long) images * FaultJob.TASKS.size();
        ImageFiles.writeJpegs(work.resolve("images"), images, 320, 240);
        Path pgDir = work.resolve("data/pg");
        List<List<Object>> rows = new ArrayList<>();
        long lostTotal = 0;
        long twiceTotal = 0;
        String password;
        try (EmbeddedPostgresServer first = EmbeddedPostgresServer.startOrJoin(pgDir)) {
            password = first.password(); // the data folder as the app makes it (password file included), then stopped
        }
        int port;
        try (java.net.ServerSocket free = new java.net.ServerSocket(0)) {
            port = free.getLocalPort();
        }
        try (VlmServeProcess server = VlmServeProcess.start(work);
             PgControl control = new PgControl(pgDir, port, password)) {
            control.start(); // the app joins the server its data folder names
            Path job = FaultJob.write(work, "pgdown", "{ folder: images }", "base_url: \"%s\", concurrency: 8, retries: 3, backoff_ms: 200, timeout_s: 10"
                    .formatted(server.baseUrl()), CHUNK, PARTITIONS);
            Launcher launcher = new Launcher(work.resolve("data"), work);
            Sql sql = new Sql("jdbc:postgresql://127.0.0.1:" + port + "/postgres", password);
            int round = 0;
            for (int outage : outages) {
                round++;
                String date = "2026-07-%02d".formatted(round);
                Path log = work.resolve("run-" + round + ".log");
                Process run = launcher.start(log, "run", job.toString(), "--date", date);
                // polled only once the run has started its job: a query racing the first run's schema migration
                // can deadlock with it (seen: V4's ALTER against this poll's join)
                assertThat(Waiting.until(() -> !run.isAlive() || text(log).contains("running job")
                        && sql.done(date).size() >= total / 3, Duration.ofMinutes(5)))
                        .as(Files.readString(log)).isTrue();
                assertThat(run.isAlive()).as("the run still going at the outage\n" + Files.readString(log)).isTrue();
                Map<String, String> atStop = sql.done(date);
                long stopped = System.nanoTime();
                control.stop();
                Thread.sleep(outage * 1000L);
                control.start();
                boolean ended = run.waitFor(10, TimeUnit.MINUTES);
                double secondsToEnd = (System.nanoTime() - stopped) / 1e9 - outage;
                assertThat(ended).as("the run ends after PostgreSQL is back\n" + Files.readString(log)).isTrue();
                String output = Files.readString(log);
                String outcome;
                int restartExit = -1;
                if (run.exitValue() == 0) {
                    outcome = "survived (exit 0)";
                } else {
                    assertThat(run.exitValue()).as(output).isEqualTo(1);
                    outcome = "failed (exit 1): " + lastError(output);
                    assertThat(output).as("a failed run says how to resume it").contains("vlm-batch restart " + job);
                    Launcher.Result restart = launcher.run(600, "restart", job.toString(), "--date", date);
                    restartExit = restart.exitCode();
                    assertThat(restartExit).as(restart.output()).isZero();
                }
                Map<String, String> end = sql.done(date);
                long lost = atStop.keySet().stream().filter(k -> !end.containsKey(k)).count();
                long twice = atStop.entrySet().stream().filter(e -> end.containsKey(e.getKey()) && !end.get(e.getKey()).equals(e.getValue())).count();
                lostTotal += lost;
                twiceTotal += twice;
                rows.add(List.of(round, outage, atStop.size() + "/" + total, outcome, "%.1f".formatted(secondsToEnd),
                        restartExit < 0 ? "-" : restartExit, end.size() + "/" + total, lost, twice,
                        stackTraces(output)));
                assertThat(end).as("round %d: every result done", round).hasSize((int) total);
            }
            new FaultReport("postgres", "PostgreSQL stopped (fast shutdown) mid-run and started again on the same port")
                    .put("command", "mvn -B -ntp -o verify -Dtest=NONE -Dsurefire.failIfNoSpecifiedTests=false -Dit.test=PostgresOutageIT"
                            + " -Dfaults.images=" + images + " -Dfaults.pg.outages=" + String.join(",", outages.stream().map(String::valueOf).toList()))
                    .put("images", images).put("tasks", FaultJob.TASKS.size()).put("lost_total", lostTotal).put("stored_twice_total", twiceTotal)
                    .put("note", "s to end = seconds from PostgreSQL being back to the run process ending; stack traces = lines "
                            + "starting with 'at ' in the run's output")
                    .write(List.of("round", "outage s", "done at stop", "the run", "s to end", "restart exit", "done at end", "lost",
                            "stored twice", "stack trace lines"), rows);
            assertThat(lostTotal).isZero();
            assertThat(twiceTotal).isZero();
        }
    }

    private static String text(Path file) {
        try {
            return Files.readString(file);
        } catch (java.io.IOException notYet) {
            return "";
        }
    }

    private static String lastError(String output) {
        return output.lines().filter(l -> l.startsWith("error: ")).reduce((a, b) -> b).map(l -> l.length() > 140 ? l.substring(0, 140) + "…" : l)
                .orElse("(no error line)");
    }

    private static long stackTraces(String output) {
        return output.lines().filter(l -> l.stripLeading().startsWith("at ") && l.startsWith("\t")).count();
    }

    /** Fresh connections: the server goes away and comes back, which a pooled connection would not survive. */
    record Sql(String url, String password) {
        Map<String, String> done(String date) {
            Map<String, String> out = new HashMap<>();
            try (Connection c = DriverManager.getConnection(url, "postgres", password);
                 var st = c.prepareStatement("""
                         SELECT r.work_item_id, r.task, r.xmin::text FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                         JOIN vlm_run u ON u.run_id = w.run_id WHERE u.job_name = 'pgdown' AND u.logical_date = ?::date AND r.status = 'done'""")) {
                st.setString(1, date);
                try (ResultSet rs = st.executeQuery()) {
                    while (rs.next()) out.put(rs.getLong(1) + "/" + rs.getString(2), rs.getString(3));
                }
            } catch (SQLException notThereYet) {
                // before the schema exists, or while the server is down
            }
            return out;
        }
    }

    /**
     * The server, stopped (the library's stop: a fast shutdown, sessions cut) and started again on the same
     * port and data folder through the embedded-PostgreSQL library the app uses (pg_ctl and the server
     * binary refuse to run as root when started by hand).
     */
    static final class PgControl implements AutoCloseable {
        private final Path dataDir;
        private final int port;
        private final String password;
        private io.zonky.test.db.postgres.embedded.EmbeddedPostgres running;

        PgControl(Path dataDir, int port, String password) {
            this.dataDir = dataDir;
            this.port = port;
            this.password = password;
        }

        void stop() throws Exception {
            running.close();
            running = null;
        }

        void start() throws Exception {
            java.io.File log = dataDir.resolveSibling("postgres-test.log").toFile();
            running = io.zonky.test.db.postgres.embedded.EmbeddedPostgres.builder()
                    .setDataDirectory(dataDir).setCleanDataDirectory(false).setRegisterShutdownHook(false)
                    .setPort(port).setConnectConfig("password", password)
                    .setServerConfig("synchronous_commit", "on")
                    .setOutputRedirector(ProcessBuilder.Redirect.appendTo(log)).setErrorRedirector(ProcessBuilder.Redirect.appendTo(log))
                    .setPGStartupWait(Duration.ofSeconds(120)).start();
        }

        @Override
        public void close() throws Exception {
            if (running != null) running.close();
        }
    }
}
