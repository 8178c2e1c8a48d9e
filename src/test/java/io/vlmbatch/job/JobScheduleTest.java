package io.vlmbatch.job;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneId;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The schedule keys of a job file, read by the one job-file reader, and the cron's intervals. */
class JobScheduleTest {
    @TempDir
    Path dir;

    Path job(String body) throws Exception {
        Path f = dir.resolve("j.yaml");
        Files.writeString(f, "name: j\n" + body + "source: { folder: . }\ntasks:\n  - { name: c, template: describe }\n");
        return f;
    }

    private static ScheduleSpec schedule(Path file) {
        return JobFileLoader.load(file).schedule();
    }

    @Test
    void readsCronAndSettings() throws Exception {
        ScheduleSpec s = schedule(job("""
                schedule: "30 2 * * 1"
                scheduling: { start_date: 2026-01-05, catchup: true, max_active_runs: 3, retries: 2, retry_delay: 90s, timezone: Europe/Berlin }
                """));
        assertThat(s.scheduled()).isTrue();
        assertThat(s.startDate()).isEqualTo(LocalDate.of(2026, 1, 5));
        assertThat(s.catchup()).isTrue();
        assertThat(s.maxActiveRuns()).isEqualTo(3);
        assertThat(s.retries()).isEqualTo(2);
        assertThat(s.retryDelay()).isEqualTo(Duration.ofSeconds(90));
        assertThat(s.zone()).isEqualTo(ZoneId.of("Europe/Berlin"));
        assertThat(s.intervals().subDaily()).isFalse();
    }

    @Test
    void defaultsAndManualJobs() throws Exception {
        ScheduleSpec s = schedule(job("schedule: \"@daily\"\n"));
        assertThat(s.catchup()).isFalse();
        assertThat(s.maxActiveRuns()).isEqualTo(1);
        assertThat(s.retries()).isZero();
        assertThat(schedule(job("")).scheduled()).isFalse();
    }

    @Test
    void errorsNameLineAndField() throws Exception {
        assertThatThrownBy(() -> schedule(job("schedule: \"61 * * * *\"\n")))
                .isInstanceOf(JobFileException.class).hasMessageContaining("j.yaml:2: schedule: not a cron expression");
        assertThatThrownBy(() -> schedule(job("schedule: \"@daily\"\nscheduling:\n  max_active_runs: 0\n")))
                .hasMessageContaining(":4: scheduling.max_active_runs: must be between 1 and 64");
        assertThatThrownBy(() -> schedule(job("schedule: \"@daily\"\nscheduling: { retry_delay: soon }\n")))
                .hasMessageContaining(":3: scheduling.retry_delay: must be a duration");
        assertThatThrownBy(() -> schedule(job("schedule: \"@daily\"\nscheduling: { catchup: yes please }\n")))
                .hasMessageContaining("scheduling.catchup: must be true or false");
        assertThatThrownBy(() -> schedule(job("scheduling: { catchup: true }\n")))
                .hasMessageContaining("scheduling: needs a schedule");
        assertThatThrownBy(() -> schedule(job("schedule: \"@daily\"\nscheduling: { timezone: Mars/Base }\n")))
                .hasMessageContaining("scheduling.timezone: not a time zone");
    }

    @Test
    void intervalsFollowTheCronInItsZone() {
        Intervals daily = Intervals.parse("0 2 * * *", ZoneId.of("UTC"));
        Intervals.Interval i = daily.latestComplete(Instant.parse("2026-01-05T01:00:00Z"));
        assertThat(i).isEqualTo(new Intervals.Interval(Instant.parse("2026-01-03T02:00:00Z"), Instant.parse("2026-01-04T02:00:00Z")));
        assertThat(daily.logicalDate(i.start())).isEqualTo(LocalDate.of(2026, 1, 3));
        assertThat(daily.first(LocalDate.of(2026, 1, 1)).start()).isEqualTo(Instant.parse("2026-01-01T02:00:00Z"));

        Intervals berlin = Intervals.parse("0 0 * * *", ZoneId.of("Europe/Berlin"));
        Intervals.Interval b = berlin.latestComplete(Instant.parse("2026-07-02T00:00:00Z"));
        assertThat(b.start()).isEqualTo(Instant.parse("2026-06-30T22:00:00Z"));
        assertThat(berlin.logicalDate(b.start())).isEqualTo(LocalDate.of(2026, 7, 1));

        Intervals monthly = Intervals.parse("@monthly", ZoneId.of("UTC"));
        assertThat(monthly.latestComplete(Instant.parse("2026-05-15T00:00:00Z")).start()).isEqualTo(Instant.parse("2026-04-01T00:00:00Z"));

        Intervals hourly = Intervals.parse("0 * * * *", ZoneId.of("UTC"));
        assertThat(hourly.subDaily()).isTrue();
        assertThat(hourly.ts(Instant.parse("2026-01-01T05:00:00Z"))).isEqualTo("2026-01-01T05:00");
    }

    @Test
    void prevDsIsThePreviousIntervalOfTheSchedule() {
        // Weekly on Mondays: the run for Monday 2026-01-12 has prev_ds 2026-01-05, not the day before.
        Intervals weekly = Intervals.parse("0 3 * * MON", ZoneId.of("UTC"));
        Instant start = Instant.parse("2026-01-12T03:00:00Z");
        LocalDate prev = weekly.previousLogicalDate(start);
        assertThat(prev).isEqualTo(LocalDate.of(2026, 1, 5));
        RunParameters p = new RunParameters(weekly.logicalDate(start), java.util.Map.of(), prev);
        assertThat(p.render("in/{{ prev_ds }}/to/{{ ds }}", "w")).isEqualTo("in/2026-01-05/to/2026-01-12");

        Intervals daily = Intervals.parse("0 2 * * *", ZoneId.of("UTC"));
        assertThat(daily.previousLogicalDate(Instant.parse("2026-03-01T02:00:00Z"))).isEqualTo(LocalDate.of(2026, 2, 28));
        // From the command line (no schedule) it is the day before.
        assertThat(new RunParameters(LocalDate.of(2026, 3, 1), java.util.Map.of()).render("{{ prev_ds }}", "j"))
                .isEqualTo("2026-02-28");
    }
}
