package io.vlmbatch.schedule;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.LocalDate;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Backfill's decisions (which dates of a range run, which are skipped, in each reprocess mode) and the
 * queue it feeds (max_active_runs), against a hand-moved clock and a real (embedded) PostgreSQL; the
 * runs are the controlled launcher's, so each ends when the test says.
 */
class BackfillTest {
    @RegisterExtension
    static final ScheduleDatabase db = new ScheduleDatabase();

    static JobCatalog catalog(String name, String scheduleLines) throws Exception {
        return db.catalog(name, scheduleLines);
    }

    static LocalDate d(String s) {
        return LocalDate.parse(s);
    }

    Scheduler scheduler(JobCatalog c, ControlledLauncher l) {
        return new Scheduler(c, new ScheduleStore(db.ds), l, new MutableClock("2026-06-01T12:00:00Z"), Duration.ofMinutes(2), "a");
    }

    static List<String> actions(List<Backfill.Decision> ds) {
        return ds.stream().map(x -> x.logicalDate() + ":" + x.action().word()).toList();
    }

    /** Runs the queued dates one tick and ends each launched run with the outcome the test wants for that date. */
    static void runAll(Scheduler s, ControlledLauncher l, List<String> failing) {
        s.tickQueued();
        while (!l.open.isEmpty()) {
            ControlledLauncher.Launch first = l.open.getFirst();
            l.finishOldest(failing.contains(first.logicalDate()) ? RunOutcome.failed("boom") : RunOutcome.success());
            s.tickQueued();
        }
    }

    @Test
    void theThreeReprocessModesDecideWhichDatesRun() throws Exception {
        JobCatalog c = catalog("modes", "schedule: \"0 0 * * *\"\nscheduling: { max_active_runs: 8 }");
        ControlledLauncher l = new ControlledLauncher();
        Scheduler s = scheduler(c, l);
        // before: 03-02 succeeded, 03-03 failed, 03-04 succeeded; 03-01 and 03-05 never ran
        s.backfill("modes", d("2026-03-02"), d("2026-03-04"), Backfill.Reprocess.NONE);
        runAll(s, l, List.of("2026-03-03"));
        l.launches.clear();

        List<Backfill.Decision> none = s.backfill("modes", d("2026-03-01"), d("2026-03-05"), Backfill.Reprocess.NONE);
        assertThat(actions(none)).containsExactly("2026-03-01:started", "2026-03-02:skipped", "2026-03-03:skipped",
                "2026-03-04:skipped", "2026-03-05:started");
        assertThat(none.get(2).previousState()).isEqualTo("failed");
        assertThat(none.get(2).reason()).contains("--reprocess failed");
        runAll(s, l, List.of());
        assertThat(l.dates()).containsExactly("2026-03-01", "2026-03-05");
        l.launches.clear();

        List<Backfill.Decision> failed = s.backfill("modes", d("2026-03-01"), d("2026-03-05"), Backfill.Reprocess.FAILED);
        assertThat(actions(failed)).containsExactly("2026-03-01:skipped", "2026-03-02:skipped", "2026-03-03:restarted",
                "2026-03-04:skipped", "2026-03-05:skipped");
        runAll(s, l, List.of());
        assertThat(l.launches).singleElement().satisfies(x -> {
            assertThat(x.logicalDate()).isEqualTo("2026-03-03");
            assertThat(x.rerun()).as("a failed run is resumed, not rerun").isNull();
        });
        l.launches.clear();

        List<Backfill.Decision> completed = s.backfill("modes", d("2026-03-01"), d("2026-03-06"), Backfill.Reprocess.COMPLETED);
        assertThat(actions(completed)).containsExactly("2026-03-01:rerun", "2026-03-02:rerun", "2026-03-03:rerun",
                "2026-03-04:rerun", "2026-03-05:rerun", "2026-03-06:started");
        runAll(s, l, List.of());
        assertThat(l.dates()).containsExactly("2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06");
        assertThat(l.launches).filteredOn(x -> "all".equals(x.rerun())).hasSize(5);
        assertThat(db.jdbc.queryForList("SELECT DISTINCT state FROM vlm_schedule_run WHERE job_name = 'modes'", String.class))
                .containsExactly("success");
        assertThat(db.jdbc.queryForObject("SELECT count(*) FROM vlm_schedule_run WHERE rerun IS NOT NULL", Integer.class))
                .as("a rerun that succeeded is a plain run again").isZero();
    }

    @Test
    void queuedOrRunningDatesAreLeftAloneInEveryMode() throws Exception {
        JobCatalog c = catalog("busy", "schedule: \"0 0 * * *\"\nscheduling: { max_active_runs: 1 }");
        ControlledLauncher l = new ControlledLauncher();
        Scheduler s = scheduler(c, l);
        s.backfill("busy", d("2026-03-01"), d("2026-03-02"), Backfill.Reprocess.NONE);
        s.tickQueued(); // 03-01 running, 03-02 queued
        List<Backfill.Decision> again = s.backfill("busy", d("2026-03-01"), d("2026-03-02"), Backfill.Reprocess.COMPLETED);
        assertThat(actions(again)).containsExactly("2026-03-01:skipped", "2026-03-02:skipped");
        assertThat(again.get(0).reason()).isEqualTo("already running");
        assertThat(again.get(1).reason()).isEqualTo("already queued");
    }

    @Test
    void maxActiveRunsBoundsTheBackfillAndTheOldestDatesGoFirst() throws Exception {
        JobCatalog c = catalog("bounded", "schedule: \"0 0 * * *\"\nscheduling: { max_active_runs: 3 }");
        ControlledLauncher l = new ControlledLauncher();
        Scheduler s = scheduler(c, l);
        List<Backfill.Decision> ds = s.backfill("bounded", d("2026-01-01"), d("2026-01-10"), Backfill.Reprocess.NONE);
        assertThat(ds).hasSize(10).allSatisfy(x -> assertThat(x.action()).isEqualTo(Backfill.Action.START));
        s.tickQueued();
        assertThat(l.open).hasSize(3);
        int most = 0;
        while (!l.open.isEmpty()) {
            int running = db.jdbc.queryForObject("SELECT count(*) FROM vlm_schedule_run WHERE job_name = 'bounded' AND state = 'running'",
                    Integer.class);
            assertThat(running).isEqualTo(l.open.size()).isLessThanOrEqualTo(3);
            most = Math.max(most, running);
            l.finishOldest(RunOutcome.success());
            s.tickQueued();
            s.tickQueued(); // a second tick starts nothing more: the bound holds across ticks
        }
        assertThat(most).isEqualTo(3);
        assertThat(l.dates()).hasSize(10).isSorted();
    }

    @Test
    void theScheduleDecidesWhichRunsARangeHolds() throws Exception {
        JobCatalog hourly = catalog("hourly", "schedule: \"0 * * * *\"");
        List<Backfill.Decision> h = scheduler(hourly, new ControlledLauncher())
                .backfill("hourly", d("2026-02-01"), d("2026-02-01"), Backfill.Reprocess.NONE);
        assertThat(h).hasSize(24);
        assertThat(h.getFirst().params()).isEqualTo("ts=2026-02-01T00:00");
        assertThat(h.getLast().params()).isEqualTo("ts=2026-02-01T23:00");

        JobCatalog weekly = catalog("weekly", "schedule: \"0 3 * * 1\"");
        List<Backfill.Decision> w = scheduler(weekly, new ControlledLauncher())
                .backfill("weekly", d("2026-02-01"), d("2026-02-28"), Backfill.Reprocess.NONE);
        assertThat(w).extracting(x -> x.logicalDate().toString())
                .containsExactly("2026-02-02", "2026-02-09", "2026-02-16", "2026-02-23"); // the Mondays

        JobCatalog manual = catalog("manual", "");
        List<Backfill.Decision> m = scheduler(manual, new ControlledLauncher())
                .backfill("manual", d("2026-02-27"), d("2026-03-02"), Backfill.Reprocess.NONE);
        assertThat(m).extracting(x -> x.logicalDate().toString())
                .as("no schedule: one run per day").containsExactly("2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02");
        assertThat(db.jdbc.queryForList("SELECT DISTINCT trigger FROM vlm_schedule_run", String.class)).containsExactly("backfill");
    }

    @Test
    void hostileRangesAndModesAreRefusedAndQueueNothing() throws Exception {
        JobCatalog c = catalog("hostile", "schedule: \"0 0 * * *\"");
        JobCatalog hourly = catalog("hourly2", "schedule: \"0 * * * *\"");
        Scheduler s = scheduler(c, new ControlledLauncher());
        assertThatThrownBy(() -> s.backfill("hostile", d("2026-03-05"), d("2026-03-01"), Backfill.Reprocess.NONE))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("before it starts");
        assertThatThrownBy(() -> s.backfill("hostile", d("2024-12-31"), d("2026-01-01"), Backfill.Reprocess.NONE))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("at most 366");
        assertThatThrownBy(() -> s.backfill("hostile", LocalDate.MIN, LocalDate.MIN, Backfill.Reprocess.NONE))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("must lie between");
        assertThatThrownBy(() -> s.backfill("hostile", d("2026-01-01"), LocalDate.MAX, Backfill.Reprocess.NONE))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("must lie between");
        assertThatThrownBy(() -> scheduler(hourly, new ControlledLauncher())
                .backfill("hourly2", d("2026-01-01"), d("2026-01-16"), Backfill.Reprocess.NONE))
                .as("16 days of an hourly job are 384 runs").hasMessageContaining("at most 366");
        assertThatThrownBy(() -> s.backfill("nope", d("2026-03-01"), d("2026-03-01"), Backfill.Reprocess.NONE))
                .hasMessageContaining("no usable job");
        assertThatThrownBy(() -> Backfill.Reprocess.parse("all")).hasMessageContaining("none, failed or completed");
        assertThatThrownBy(() -> Backfill.Reprocess.parse("FAILED' OR 1=1")).hasMessageContaining("none, failed or completed");
        assertThatThrownBy(() -> Backfill.Reprocess.parse(null)).isInstanceOf(IllegalArgumentException.class);
        assertThat(Backfill.Reprocess.parse("completed")).isEqualTo(Backfill.Reprocess.COMPLETED);
        assertThat(db.jdbc.queryForObject("SELECT count(*) FROM vlm_schedule_run", Integer.class)).isZero();
    }
}
