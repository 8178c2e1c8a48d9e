package io.vlmbatch.job;

import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import org.springframework.scheduling.support.CronExpression;

/**
 * The data intervals of a cron schedule: consecutive fire times a < b make the interval [a, b), due
 * once b has passed. Accepts 5-field (minute-first, as in crontab and Airflow) and 6-field
 * (second-first, Spring's) expressions and the macros @hourly, @daily, @weekly, @monthly, @yearly.
 */
public final class Intervals {
    public record Interval(Instant start, Instant end) {}

    private static final DateTimeFormatter TS = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm");
    /** How far back to look for the latest fire time before giving up (a cron that fires rarely). */
    private static final List<Duration> LOOKBACK = List.of(Duration.ofDays(2), Duration.ofDays(40), Duration.ofDays(400),
            Duration.ofDays(3000));

    private final String text;
    private final CronExpression cron;
    private final ZoneId zone;
    private final boolean subDaily;

    private Intervals(String text, CronExpression cron, ZoneId zone) {
        this.text = text;
        this.cron = cron;
        this.zone = zone;
        this.subDaily = firesMoreThanDaily();
    }

    /** @throws IllegalArgumentException with a readable reason when the expression is not a cron */
    public static Intervals parse(String expression, ZoneId zone) {
        String e = expression.strip();
        String spring = e.startsWith("@") || e.split("\\s+").length != 5 ? e : "0 " + e;
        try {
            return new Intervals(e, CronExpression.parse(spring), zone);
        } catch (IllegalArgumentException ex) {
            throw new IllegalArgumentException("not a cron expression (\"m h dom mon dow\", 6 fields with seconds, or @daily/@hourly/...): "
                    + ex.getMessage());
        }
    }

    public String text() { return text; }

    public ZoneId zone() { return zone; }

    /** True when two fire times can fall on one day: then the logical date alone does not name a run. */
    public boolean subDaily() { return subDaily; }

    /** The first fire time strictly after t. */
    public Instant next(Instant t) {
        ZonedDateTime n = cron.next(t.atZone(zone));
        if (n == null) throw new IllegalStateException("the cron " + text + " never fires after " + t);
        return n.toInstant();
    }

    /** The first interval starting at or after the start of {@code day}. */
    public Interval first(LocalDate day) {
        Instant a = next(day.atStartOfDay(zone).toInstant().minusSeconds(1));
        return new Interval(a, next(a));
    }

    public Interval after(Interval i) {
        return new Interval(i.end(), next(i.end()));
    }

    /** The latest interval that is complete at {@code now} (its end at or before now), or null if none is found. */
    public Interval latestComplete(Instant now) {
        for (Duration back : LOOKBACK) {
            List<Instant> fires = new ArrayList<>();
            Instant t = next(now.minus(back));
            while (!t.isAfter(now)) {
                fires.add(t);
                if (fires.size() > 2) fires.removeFirst();
                t = next(t);
            }
            if (fires.size() == 2) return new Interval(fires.get(0), fires.get(1));
        }
        return null;
    }

    /** The logical date of a run: the day its interval starts, in the schedule's zone. */
    public LocalDate logicalDate(Instant intervalStart) {
        return intervalStart.atZone(zone).toLocalDate();
    }

    /** The logical date of the interval before the one starting at {@code intervalStart} ({{ prev_ds }}). */
    public LocalDate previousLogicalDate(Instant intervalStart) {
        Interval previous = latestComplete(intervalStart);
        return previous == null ? logicalDate(intervalStart).minusDays(1) : logicalDate(previous.start());
    }

    /** The interval start as local date-time text (e.g. 2026-01-01T02:00), the run's `ts` for sub-daily schedules. */
    public String ts(Instant intervalStart) {
        return intervalStart.atZone(zone).format(TS);
    }

    private boolean firesMoreThanDaily() {
        Instant t = next(Instant.parse("2025-01-01T00:00:00Z"));
        for (int i = 0; i < 60; i++) {
            Instant n = next(t);
            if (logicalDate(n).equals(logicalDate(t))) return true;
            t = n;
        }
        return false;
    }

    @Override
    public String toString() { return text + " (" + zone + ")"; }
}
