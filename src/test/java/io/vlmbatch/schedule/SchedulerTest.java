package io.vlmbatch.schedule;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The scheduler's decisions against a hand-moved clock and a real (embedded) PostgreSQL. */
class SchedulerTest {
    @RegisterExtension
    static final ScheduleDatabase db = new ScheduleDatabase();

    static JobCatalog catalog(String name, String schedule, String scheduling) throws Exception {
        return db.catalog(name, "schedule: \"%s\"\nscheduling: %s".formatted(schedule, scheduling));
    }

    Scheduler scheduler(JobCatalog c, ControlledLauncher l, MutableClock clock, String owner) {
        return new Scheduler(c, new ScheduleStore(db.ds), l, clock, Duration.ofMinutes(2), owner);
    }

    List<String> states(String job) {
        return db.jdbc.queryForList("SELECT logical_date || ':' || state FROM vlm_schedule_run WHERE job_name = ? ORDER BY interval_start",
                String.class, job);
    }

    @Test
    void catchupQueuesEveryMissedIntervalWithTheIntervalStartAsLogicalDate() throws Exception {
        JobCatalog c = catalog("nightly", "0 2 * * *", "{ start_date: 2026-01-01, catchup: true, max_active_runs: 10 }");
        ControlledLauncher l = new ControlledLauncher();
        MutableClock clock = new MutableClock("2026-01-05T01:59:00Z");
        Scheduler s = scheduler(c, l, clock, "a");

        s.tick();
        // [Jan 1 02:00, Jan 2 02:00) ... [Jan 3 02:00, Jan 4 02:00) have ended; Jan 4's interval ends at Jan 5 02:00
        assertThat(l.dates()).containsExactly("2026-01-01", "2026-01-02", "2026-01-03");

        clock.set("2026-01-05T02:00:00Z");
        s.tick();
        assertThat(l.dates()).containsExactly("2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04");
        l.finishAll(RunOutcome.success());
        s.tick();
        assertThat(states("nightly")).containsExactly("2026-01-01:success", "2026-01-02:success", "2026-01-03:success",
                "2026-01-04:success");
        assertThat(s.nextRunAt("nightly")).contains(java.time.Instant.parse("2026-01-06T02:00:00Z"));
    }

    @Test
    void withoutCatchupOnlyTheLatestIntervalRunsAndDowntimeIsSkipped() throws Exception {
        JobCatalog c = catalog("latest", "0 2 * * *", "{ start_date: 2026-01-01, catchup: false }");
        ControlledLauncher l = new ControlledLauncher();
        MutableClock clock = new MutableClock("2026-01-05T03:00:00Z");
        Scheduler s = scheduler(c, l, clock, "a");
        s.tick();
        assertThat(l.dates()).containsExactly("2026-01-04");
        l.finishAll(RunOutcome.success());
        clock.set("2026-01-09T03:00:00Z"); // down for four days
        s.tick();
        assertThat(l.dates()).containsExactly("2026-01-04", "2026-01-08");
    }

    @Test
    void maxActiveRunsBoundsRunsAtOnceAndTheOldestGoFirst() throws Exception {
        JobCatalog c = catalog("bounded", "0 0 * * *", "{ start_date: 2026-03-01, catchup: true, max_active_runs: 2 }");
        ControlledLauncher l = new ControlledLauncher();
        MutableClock clock = new MutableClock("2026-03-06T00:30:00Z");
        Scheduler s = scheduler(c, l, clock, "a");

        s.tick();
        assertThat(l.dates()).containsExactly("2026-03-01", "2026-03-02");
        s.tick();
        assertThat(l.open).hasSize(2);
        assertThat(states("bounded")).filteredOn(x -> x.endsWith(":queued")).hasSize(3);

        l.finishOldest(RunOutcome.success());
        s.tick();
        assertThat(l.dates()).containsExactly("2026-03-01", "2026-03-02", "2026-03-03");
        while (!l.open.isEmpty()) {
            assertThat(db.jdbc.queryForObject("SELECT count(*) FROM vlm_schedule_run WHERE job_name = 'bounded' AND state = 'running'",
                    Integer.class)).isLessThanOrEqualTo(2);
            l.finishOldest(RunOutcome.success());
            s.tick();
        }
        assertThat(l.dates()).containsExactly("2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05");
    }

    @Test
    void aFailedRunIsRetriedAfterTheDelayThenStaysFailed() throws Exception {
        JobCatalog c = catalog("flaky", "0 2 * * *", "{ start_date: 2026-01-01, catchup: false, retries: 2, retry_delay: 10m }");
        ControlledLauncher l = new ControlledLauncher();
        MutableClock clock = new MutableClock("2026-01-02T03:00:00Z");
        Scheduler s = scheduler(c, l, clock, "a");

        s.tick();
        assertThat(l.launches).hasSize(1);
        l.finishOldest(RunOutcome.failed("inference server down"));
        assertThat(states("flaky")).containsExactly("2026-01-01:up_for_retry");

        clock.advance(Duration.ofMinutes(9));
        s.tick();
        assertThat(l.launches).as("not before retry_delay").hasSize(1);
        clock.advance(Duration.ofMinutes(1));
        s.tick();
        assertThat(l.launches).hasSize(2);
        assertThat(l.launches.get(1).attempt()).isEqualTo(2);
        l.finishOldest(RunOutcome.failed("still down"));

        clock.advance(Duration.ofMinutes(10));
        s.tick();
        assertThat(l.launches).hasSize(3);
        l.finishOldest(RunOutcome.failed("down for good"));
        clock.advance(Duration.ofHours(1));
        s.tick();
        assertThat(l.launches).as("retries exhausted").hasSize(3);
        assertThat(states("flaky")).containsExactly("2026-01-01:failed");
        assertThat(db.jdbc.queryForObject("SELECT last_error FROM vlm_schedule_run WHERE job_name = 'flaky'", String.class))
                .isEqualTo("down for good");

        // a restart from the UI queues it again; it then succeeds
        assertThat(s.restart("flaky", java.time.Instant.parse("2026-01-01T02:00:00Z"))).isTrue();
        s.tick();
        assertThat(l.launches).hasSize(4);
        l.finishOldest(RunOutcome.success());
        assertThat(states("flaky")).containsExactly("2026-01-01:success");
    }

    @Test
    void stopRequestReachesTheRunningRunAndQueuedRunsStopAtOnce() throws Exception {
        JobCatalog c = catalog("stoppable", "0 0 * * *", "{ start_date: 2026-03-01, catchup: true, max_active_runs: 1 }");
        ControlledLauncher l = new ControlledLauncher();
        MutableClock clock = new MutableClock("2026-03-03T00:30:00Z");
        Scheduler s = scheduler(c, l, clock, "a");
        s.tick();
        assertThat(s.stop("stoppable", java.time.Instant.parse("2026-03-02T00:00:00Z"))).isTrue();
        assertThat(s.stop("stoppable", java.time.Instant.parse("2026-03-01T00:00:00Z"))).isTrue();
        s.tick();
        assertThat(l.stops).containsExactly("2026-03-01");
        l.finishOldest(RunOutcome.stopped());
        s.tick();
        assertThat(states("stoppable")).containsExactly("2026-03-01:stopped", "2026-03-02:stopped");
        assertThat(l.launches).hasSize(1);
    }

    @Test
    void aManualTriggerAndTheCronNeverQueueTheSameDateTwice() throws Exception {
        JobCatalog c = catalog("both", "0 2 * * *", "{ start_date: 2026-01-01, catchup: true, max_active_runs: 5 }");
        ControlledLauncher l = new ControlledLauncher();
        MutableClock clock = new MutableClock("2026-01-02T01:00:00Z");
        Scheduler s = scheduler(c, l, clock, "a");
        ScheduledRun manual = s.trigger("both", java.time.LocalDate.parse("2026-01-01"));
        assertThat(manual.trigger()).isEqualTo("manual");
        clock.set("2026-01-02T03:00:00Z");
        s.tick();
        assertThat(l.dates()).containsExactly("2026-01-01");
        assertThat(db.jdbc.queryForObject("SELECT count(*) FROM vlm_schedule_run WHERE job_name = 'both'", Integer.class)).isEqualTo(1);
    }

    @Test
    void runsOfAnInstanceThatDiedAreResumedByAnother() throws Exception {
        JobCatalog c = catalog("orphan", "0 2 * * *", "{ start_date: 2026-01-01, catchup: false, retries: 1, retry_delay: 1m }");
        MutableClock clock = new MutableClock("2026-01-02T03:00:00Z");
        ControlledLauncher la = new ControlledLauncher(), lb = new ControlledLauncher();
        Scheduler a = scheduler(c, la, clock, "a"), b = scheduler(c, lb, clock, "b");
        a.tick();
        b.tick();
        assertThat(la.launches).hasSize(1);
        assertThat(lb.launches).isEmpty();
        clock.advance(Duration.ofMinutes(1));
        b.tick();
        assertThat(lb.launches).as("a still beats: within the timeout").isEmpty();
        clock.advance(Duration.ofMinutes(3)); // a is gone: no heartbeat for 4 minutes
        b.tick();
        assertThat(lb.launches).hasSize(1);
        assertThat(lb.launches.getFirst().attempt()).isEqualTo(2);
        la.finishOldest(RunOutcome.success()); // a zombie reporting late changes nothing
        assertThat(states("orphan")).containsExactly("2026-01-01:running");
        lb.finishOldest(RunOutcome.success());
        assertThat(states("orphan")).containsExactly("2026-01-01:success");
    }

    @Test
    void twoInstancesOnOneDatabaseNeverRunAnIntervalTwice() throws Exception {
        JobCatalog c = catalog("shared", "0 * * * *", "{ start_date: 2026-02-01, catchup: true, max_active_runs: 3 }");
        MutableClock clock = new MutableClock("2026-02-02T12:30:00Z"); // 36 hourly intervals have ended
        AtomicInteger runningNow = new AtomicInteger();
        AtomicInteger maxRunning = new AtomicInteger();
        List<String> launched = java.util.Collections.synchronizedList(new ArrayList<>());
        RunLauncher concurrent = (job, run, prevDs, done) -> {
            launched.add(run.paramMap().get("ts"));
            maxRunning.accumulateAndGet(runningNow.incrementAndGet(), Math::max);
            Thread.ofVirtual().start(() -> {
                try {
                    Thread.sleep(ThreadLocalRandom.current().nextInt(1, 15));
                } catch (InterruptedException ignored) {
                    // finish early
                }
                runningNow.decrementAndGet();
                done.accept(RunOutcome.success());
            });
            return () -> {};
        };
        Scheduler a = new Scheduler(c, new ScheduleStore(db.ds), concurrent, clock, Duration.ofMinutes(2), "a");
        Scheduler b = new Scheduler(c, new ScheduleStore(db.ds), concurrent, clock, Duration.ofMinutes(2), "b");
        CountDownLatch go = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        for (Scheduler s : List.of(a, b)) {
            threads.add(Thread.ofPlatform().start(() -> {
                try {
                    go.await();
                    for (int i = 0; i < 400 && launched.size() < 36; i++) {
                        s.tick();
                        Thread.sleep(2);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }));
        }
        go.countDown();
        for (Thread t : threads) t.join();
        Thread.sleep(100);

        assertThat(launched).hasSize(36);
        Set<String> unique = new HashSet<>(launched);
        assertThat(unique).as("every interval launched exactly once").hasSize(36);
        assertThat(maxRunning.get()).as("max_active_runs over both instances").isLessThanOrEqualTo(3);
        assertThat(db.jdbc.queryForObject("SELECT count(*) FROM vlm_schedule_run WHERE job_name = 'shared' AND state = 'success'",
                Integer.class)).isEqualTo(36);
        assertThat(db.jdbc.queryForList("SELECT DISTINCT params FROM vlm_schedule_run WHERE job_name = 'shared' ORDER BY 1 LIMIT 2",
                String.class)).containsExactly("ts=2026-02-01T00:00", "ts=2026-02-01T01:00");
    }
}
