package io.vlmbatch.schedule;

import io.vlmbatch.job.Intervals;
import io.vlmbatch.job.Intervals.Interval;
import io.vlmbatch.job.ScheduleSpec;
import java.time.Instant;
import java.time.LocalDate;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Backfill as in Airflow: the runs of a range of logical dates, queued for the scheduler (which starts
 * them as max_active_runs allows). The job's schedule decides which runs the range holds (a daily cron:
 * one per day; hourly: 24 per day, told apart by their `ts` param; weekly: one per week); a job without a
 * schedule has one run per day. What happens to a date that already has a run is the reprocess mode's
 * choice: NONE skips it, FAILED also resumes it when it failed or was stopped, COMPLETED also reruns it
 * when it completed (a new attempt over every item, so with the ledger only what changed is asked).
 * Runs queued or running are always left alone.
 */
public final class Backfill {
    /** Runs one backfill may queue: a year of a daily job. */
    public static final int MAX_RUNS = 366;
    /** Logical dates a backfill accepts: far enough for any archive, near enough for the cron to search quickly. */
    static final LocalDate EARLIEST = LocalDate.of(1900, 1, 1), LATEST = LocalDate.of(2999, 12, 31);

    public enum Reprocess {
        NONE, FAILED, COMPLETED;

        /** @throws IllegalArgumentException naming the modes, for anything else */
        public static Reprocess parse(String text) {
            if (text != null) {
                for (Reprocess r : values()) if (r.name().toLowerCase(Locale.ROOT).equals(text)) return r;
            }
            throw new IllegalArgumentException("reprocess must be none, failed or completed");
        }

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    public enum Action {
        /** no run of that date yet: queued */
        START("started"),
        /** a failed or stopped run: queued to resume where it stopped */
        RESTART("restarted"),
        /** a completed run: queued as a new attempt over every item */
        RERUN("rerun"),
        SKIP("skipped");

        private final String word;

        Action(String word) { this.word = word; }

        public String word() { return word; }
    }

    /**
     * What backfill did about one run of the range. previousState: the run's state word before (null: no
     * run); reason: why it was skipped.
     */
    public record Decision(LocalDate logicalDate, String params, Instant intervalStart, Action action, String previousState,
                           String reason) {
        public boolean queued() { return action != Action.SKIP; }
    }

    /** One run of the range: its interval, logical date and params (ts=... for a schedule firing more than daily). */
    record Slot(Interval interval, LocalDate logicalDate, String params) {}

    private Backfill() {}

    /**
     * The runs of [from, to] for this schedule, oldest first.
     * @throws IllegalArgumentException when to is before from or the range holds more than MAX_RUNS runs
     */
    static List<Slot> slots(ScheduleSpec s, LocalDate from, LocalDate to) {
        if (from == null || to == null) throw new IllegalArgumentException("backfill needs both from and to dates");
        if (to.isBefore(from)) throw new IllegalArgumentException("the range ends (" + to + ") before it starts (" + from + ")");
        for (LocalDate d : List.of(from, to)) {
            if (d.isBefore(EARLIEST) || d.isAfter(LATEST)) {
                throw new IllegalArgumentException("backfill dates must lie between " + EARLIEST + " and " + LATEST + ", got " + d);
            }
        }
        List<Slot> slots = new ArrayList<>();
        if (!s.scheduled()) {
            long days = ChronoUnit.DAYS.between(from, to) + 1;
            if (days > MAX_RUNS) throw tooMany(days + " runs (one per day)");
            for (LocalDate d = from; !d.isAfter(to); d = d.plusDays(1)) {
                slots.add(new Slot(new Interval(d.atStartOfDay(s.zone()).toInstant(), d.plusDays(1).atStartOfDay(s.zone()).toInstant()),
                        d, ""));
            }
            return slots;
        }
        Intervals iv = s.intervals();
        for (Interval i = iv.first(from); !iv.logicalDate(i.start()).isAfter(to); i = iv.after(i)) {
            if (slots.size() == MAX_RUNS) throw tooMany("more than " + MAX_RUNS + " runs for the schedule " + iv.text());
            slots.add(new Slot(i, iv.logicalDate(i.start()), iv.subDaily() ? "ts=" + iv.ts(i.start()) : ""));
        }
        return slots;
    }

    private static IllegalArgumentException tooMany(String what) {
        return new IllegalArgumentException("the range holds " + what + "; a backfill queues at most " + MAX_RUNS
                + " (split it into several)");
    }

    /** What to do with a run whose state word is {@code state} (null: no run) in this mode, with the reason to skip. */
    static Action decide(String state, Reprocess mode) {
        if (state == null) return Action.START;
        return switch (state) {
            case "success" -> mode == Reprocess.COMPLETED ? Action.RERUN : Action.SKIP;
            case "failed", "stopped" -> mode == Reprocess.NONE ? Action.SKIP : Action.RESTART;
            default -> Action.SKIP; // queued, running, stopping, up_for_retry: already on its way
        };
    }

    private static String skipReason(String state, Reprocess mode) {
        return switch (state) {
            case "success" -> "completed (--reprocess completed reruns it)";
            case "failed", "stopped" -> state + " (--reprocess failed resumes it)";
            default -> "already " + state;
        };
    }

    /**
     * Queues the runs of [from, to] of a job and says, per run, what it did. Each queueing is one
     * conditional statement, so a run that another scheduler queued or started meanwhile is reported as
     * skipped rather than queued twice.
     */
    static List<Decision> queue(ScheduleStore store, String job, ScheduleSpec schedule, LocalDate from, LocalDate to,
                                Reprocess mode, Instant now) {
        List<Slot> slots = slots(schedule, from, to);
        Map<String, String> states = new HashMap<>();
        for (ScheduleStore.Existing e : store.existing(job, from, to)) {
            states.put(e.logicalDate() + "|" + e.params(), RunState.of(e.scheduleState(), e.batchStatus()));
        }
        List<Decision> out = new ArrayList<>();
        for (Slot slot : slots) {
            String state = states.get(slot.logicalDate() + "|" + slot.params());
            Action action = decide(state, mode);
            boolean queued = switch (action) {
                case START -> store.enqueue(job, slot.interval(), slot.logicalDate(), slot.params(), "backfill", now, null);
                case RESTART -> requeue(store, job, slot, now, null);
                case RERUN -> requeue(store, job, slot, now, "all");
                case SKIP -> false;
            };
            Instant start = state == null ? slot.interval().start()
                    : store.findByDate(job, slot.logicalDate(), slot.params()).map(ScheduledRun::intervalStart).orElse(slot.interval().start());
            if (action != Action.SKIP && !queued) {
                out.add(new Decision(slot.logicalDate(), slot.params(), start, Action.SKIP, state, "its state changed meanwhile"));
            } else {
                out.add(new Decision(slot.logicalDate(), slot.params(), start, action, state,
                        action == Action.SKIP ? skipReason(state, mode) : null));
            }
        }
        return out;
    }

    /** A run that exists: its scheduler row queued again, or (a run of the command line) a row made for it. */
    private static boolean requeue(ScheduleStore store, String job, Slot slot, Instant now, String rerun) {
        Optional<ScheduledRun> row = store.findByDate(job, slot.logicalDate(), slot.params());
        if (row.isEmpty()) return store.enqueue(job, slot.interval(), slot.logicalDate(), slot.params(), "backfill", now, rerun);
        return rerun == null ? store.requeue(job, row.get().intervalStart()) : store.rerun(job, row.get().intervalStart(), rerun, now);
    }
}
