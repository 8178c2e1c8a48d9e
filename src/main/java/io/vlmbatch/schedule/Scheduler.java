package io.vlmbatch.schedule;

import io.vlmbatch.job.Intervals;
import io.vlmbatch.job.Intervals.Interval;
import io.vlmbatch.job.ScheduleSpec;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Decides, on every tick, which runs are due and starts them. All state is in PostgreSQL (ScheduleStore),
 * so several instances may tick against one database and the app may restart at any time:
 * <ol>
 *   <li>queue the intervals the cron has completed since the last queued one (all of them with catchup,
 *       else only the latest): an INSERT that does nothing when any instance queued it first;</li>
 *   <li>beat for the runs this instance executes; put runs whose owner stopped beating back in the queue;</li>
 *   <li>pass stop requests on to the runs this instance executes;</li>
 *   <li>claim, under the job's advisory lock, as many queued or retry-due runs as max_active_runs allows,
 *       and launch them.</li>
 * </ol>
 * Time comes from the injected Clock, so tests drive it.
 */
public final class Scheduler implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Scheduler.class);
    /** Bound on intervals queued per job per tick, so a minutely cron after a year down cannot stall a tick. */
    static final int MAX_QUEUED_PER_TICK = 500;

    private final JobCatalog catalog;
    private final ScheduleStore store;
    private final RunLauncher launcher;
    private final Clock clock;
    private final String owner;
    private final Duration orphanTimeout;
    private final Map<String, Optional<RunLauncher.Handle>> active = new ConcurrentHashMap<>();
    private ScheduledExecutorService timer;

    public Scheduler(JobCatalog catalog, ScheduleStore store, RunLauncher launcher, Clock clock, Duration orphanTimeout) {
        this(catalog, store, launcher, clock, orphanTimeout, defaultOwner());
    }

    public Scheduler(JobCatalog catalog, ScheduleStore store, RunLauncher launcher, Clock clock, Duration orphanTimeout,
                     String owner) {
        this.catalog = catalog;
        this.store = store;
        this.launcher = launcher;
        this.clock = clock;
        this.orphanTimeout = orphanTimeout;
        this.owner = owner;
    }

    static String defaultOwner() {
        return io.vlmbatch.run.RunOwnership.localHost() + "/" + ProcessHandle.current().pid() + "/"
                + UUID.randomUUID().toString().substring(0, 8);
    }

    public String owner() { return owner; }

    public JobCatalog catalog() { return catalog; }

    public ScheduleStore store() { return store; }

    /** Ticks every {@code every} on a background thread until close(). */
    public synchronized void start(Duration every) {
        if (timer != null) return;
        timer = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("scheduler").factory());
        timer.scheduleWithFixedDelay(() -> {
            try {
                tick();
            } catch (RuntimeException e) {
                log.warn("scheduler tick failed (retrying next tick): {}", e.toString());
            }
        }, 0, every.toMillis(), TimeUnit.MILLISECONDS);
    }

    public synchronized void tick() {
        tick(true);
    }

    /**
     * A tick that starts what is queued (backfill's, by hand) but queues nothing for the cron: what
     * `vlm-batch backfill` runs in its own process.
     */
    public synchronized void tickQueued() {
        tick(false);
    }

    private void tick(boolean cron) {
        Instant now = clock.instant();
        store.heartbeat(owner, now);
        expireDeadLocalOwners();
        for (JobCatalog.Entry e : catalog.usable()) {
            if (cron && e.schedule().scheduled()) queueDue(e, now);
            int released = store.releaseOrphans(e.name(), now, orphanTimeout, e.schedule().retries());
            if (released > 0) log.warn("{}: {} run(s) of a scheduler that stopped beating are queued again", e.name(), released);
        }
        for (ScheduledRun r : store.stopRequests(owner)) {
            active.getOrDefault(key(r), Optional.empty()).ifPresent(RunLauncher.Handle::stop);
        }
        for (JobCatalog.Entry e : catalog.usable()) {
            for (ScheduledRun r : store.claim(e.name(), e.schedule().maxActiveRuns(), now, owner)) launch(e, r);
        }
    }

    /** An earlier serve on this host that was killed: no need to wait out the heartbeat timeout. */
    private void expireDeadLocalOwners() {
        String host = io.vlmbatch.run.RunOwnership.localHost() + "/";
        for (String o : store.runningOwners()) {
            if (o.equals(owner) || !o.startsWith(host)) continue;
            String[] parts = o.split("/");
            try {
                long pid = Long.parseLong(parts[1]);
                if (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) continue;
                log.warn("scheduler {} is gone (process {} ended): its runs are queued again", o, pid);
                store.expire(o);
            } catch (RuntimeException notOurFormat) {
                // an owner name of another form: left to the heartbeat timeout
            }
        }
    }

    private void queueDue(JobCatalog.Entry e, Instant now) {
        ScheduleSpec s = e.schedule();
        Intervals iv = s.intervals();
        Interval latest = iv.latestComplete(now);
        if (latest == null) return;
        Instant origin;
        if (s.startDate() != null) {
            origin = iv.first(s.startDate()).start();
        } else {
            // No start_date: the job starts with the latest interval complete when first seen.
            Instant registered = store.registeredAt(e.name(), now);
            Interval atRegistration = iv.latestComplete(registered);
            origin = atRegistration == null ? iv.first(registered.atZone(iv.zone()).toLocalDate()).start() : atRegistration.start();
        }
        List<Interval> due = new ArrayList<>();
        if (s.catchup()) {
            Optional<Instant> last = store.lastScheduledStart(e.name());
            Interval i = last.isPresent() && !last.get().isBefore(origin)
                    ? iv.after(new Interval(last.get(), iv.next(last.get()))) : new Interval(origin, iv.next(origin));
            while (!i.end().isAfter(now) && due.size() < MAX_QUEUED_PER_TICK) {
                due.add(i);
                i = iv.after(i);
            }
        } else if (!latest.start().isBefore(origin)) {
            due.add(latest);
        }
        for (Interval i : due) {
            String params = iv.subDaily() ? "ts=" + iv.ts(i.start()) : "";
            if (store.enqueue(e.name(), i, iv.logicalDate(i.start()), params, "schedule", now)) {
                log.info("{}: queued the run for {}", e.name(), iv.subDaily() ? iv.ts(i.start()) : iv.logicalDate(i.start()));
            }
        }
    }

    private void launch(JobCatalog.Entry e, ScheduledRun r) {
        String key = key(r);
        active.put(key, Optional.empty());
        log.info("{}: starting the run for {} (attempt {})", r.jobName(), r.logicalDate(), r.attempt());
        try {
            LocalDate prevDs = e.schedule().scheduled() ? e.schedule().intervals().previousLogicalDate(r.intervalStart()) : null;
            RunLauncher.Handle h = launcher.launch(e.definition(), r, prevDs, outcome -> {
                active.remove(key);
                store.finish(r, owner, outcome, clock.instant(), e.schedule().retries(), e.schedule().retryDelay());
                log.info("{}: the run for {} ended {}{}", r.jobName(), r.logicalDate(), outcome.state(),
                        outcome.error() == null ? "" : ": " + outcome.error());
            });
            active.computeIfPresent(key, (k, v) -> Optional.of(h));
        } catch (RuntimeException ex) {
            active.remove(key);
            store.finish(r, owner, RunOutcome.failed("could not launch: " + ex.getMessage()), clock.instant(),
                    e.schedule().retries(), e.schedule().retryDelay());
        }
    }

    private static String key(ScheduledRun r) {
        return r.jobName() + "@" + r.intervalStart();
    }

    /** Runs this instance is executing now. */
    public int activeRuns() { return active.size(); }

    // ---- actions from the API / UI ----

    /**
     * Queues a run by hand for a logical date (today in the job's zone when null). An existing run of
     * that date is returned as it is, or queued again when it failed or was stopped.
     */
    public ScheduledRun trigger(String job, LocalDate date) {
        JobCatalog.Entry e = catalog.get(job).filter(JobCatalog.Entry::ok)
                .orElseThrow(() -> new IllegalArgumentException("no usable job named " + job));
        Instant now = clock.instant();
        LocalDate d = date != null ? date : now.atZone(e.schedule().zone()).toLocalDate();
        Optional<ScheduledRun> existing = store.findByDate(job, d, "");
        if (existing.isPresent()) {
            ScheduledRun r = existing.get();
            if (r.state().equals("failed") || r.state().equals("stopped")) store.requeue(job, r.intervalStart());
            return store.find(job, r.intervalStart()).orElseThrow();
        }
        Instant start = d.atStartOfDay(e.schedule().zone()).toInstant();
        Instant end = d.plusDays(1).atStartOfDay(e.schedule().zone()).toInstant();
        store.enqueue(job, new Interval(start, end), d, "", "manual", now);
        return store.findByDate(job, d, "").orElseThrow();
    }

    /**
     * Queues the runs of [from, to] (Backfill); they start as max_active_runs allows.
     * @throws IllegalArgumentException for an unknown job or a range Backfill refuses
     */
    public List<Backfill.Decision> backfill(String job, LocalDate from, LocalDate to, Backfill.Reprocess mode) {
        JobCatalog.Entry e = catalog.get(job).filter(JobCatalog.Entry::ok)
                .orElseThrow(() -> new IllegalArgumentException("no usable job named " + job));
        List<Backfill.Decision> decisions = Backfill.queue(store, job, e.schedule(), from, to, mode, clock.instant());
        long queued = decisions.stream().filter(Backfill.Decision::queued).count();
        log.info("{}: backfill {}..{} (reprocess {}): {} run(s) queued, {} skipped", job, from, to, mode.word(), queued,
                decisions.size() - queued);
        return decisions;
    }

    /**
     * Queues a new attempt over the failed items of a finished run (the scheduler's side of `vlm-batch
     * retry`). A run only the command line knows gets a scheduler row first.
     * @return false when the run is waiting or running
     */
    public boolean retryFailed(String job, LocalDate date, String params) {
        JobCatalog.Entry e = catalog.get(job).filter(JobCatalog.Entry::ok)
                .orElseThrow(() -> new IllegalArgumentException("no usable job named " + job));
        Instant now = clock.instant();
        Optional<ScheduledRun> row = store.findByDate(job, date, params);
        if (row.isPresent()) return store.rerun(job, row.get().intervalStart(), "failed", now);
        Instant start = date.atStartOfDay(e.schedule().zone()).toInstant();
        Instant end = date.plusDays(1).atStartOfDay(e.schedule().zone()).toInstant();
        return store.enqueue(job, new Interval(start, end), date, params, "manual", now, "failed");
    }

    public boolean restart(String job, Instant intervalStart) {
        return store.requeue(job, intervalStart);
    }

    public boolean stop(String job, Instant intervalStart) {
        return store.requestStop(job, intervalStart, clock.instant());
    }

    /** When the next scheduled run starts (the end of the interval now open), or empty without a cron. */
    public Optional<Instant> nextRunAt(String job) {
        return catalog.get(job).filter(JobCatalog.Entry::ok).map(JobCatalog.Entry::schedule)
                .filter(ScheduleSpec::scheduled).map(s -> s.intervals().next(clock.instant()));
    }

    public Instant now() { return clock.instant(); }

    @Override
    public synchronized void close() {
        if (timer != null) timer.shutdownNow();
        timer = null;
    }
}
