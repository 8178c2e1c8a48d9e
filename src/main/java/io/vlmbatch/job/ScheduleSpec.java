package io.vlmbatch.job;

import java.time.Duration;
import java.time.LocalDate;
import java.time.ZoneId;

/**
 * When and how a job runs by itself. The cron is evaluated in {@code zone}; each run covers one
 * interval between two fire times and carries the interval's start as its logical date (Airflow's
 * semantics: the run for [ds, next) starts once {@code next} has passed).
 *
 * @param startDate   the first interval starts at the first fire time on or after this day; null = the
 *                    latest interval complete when a scheduler first saw the job
 * @param catchup     run every missed interval since the start (else only the latest one)
 * @param maxActiveRuns runs of this job executing at once, over all app instances
 * @param retries     how many times a failed run is resumed by itself before it stays failed
 * @param retryDelay  wait before each retry
 */
public record ScheduleSpec(Intervals intervals, LocalDate startDate, boolean catchup, int maxActiveRuns,
                           int retries, Duration retryDelay) {

    /** Settings for jobs without a cron (manual triggers only): one at a time, no retries. */
    public static final ScheduleSpec MANUAL = new ScheduleSpec(null, null, false, 1, 0, Duration.ZERO);

    public boolean scheduled() { return intervals != null; }

    public ZoneId zone() { return intervals == null ? ZoneId.of("UTC") : intervals.zone(); }
}
