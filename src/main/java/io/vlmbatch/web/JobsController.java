package io.vlmbatch.web;

import io.vlmbatch.job.TaskSpec;
import io.vlmbatch.schedule.JobCatalog;
import io.vlmbatch.job.ScheduleSpec;
import io.vlmbatch.schedule.ScheduledRun;
import io.vlmbatch.schedule.Scheduler;
import java.time.LocalDate;
import java.time.format.DateTimeParseException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.springframework.http.HttpStatus;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/** Jobs, their runs by logical date, and the actions on runs: trigger, restart, stop. */
@RestController
@RequestMapping("/api/jobs")
class JobsController {
    private final Scheduler scheduler;
    private final RunQueries queries;

    JobsController(Scheduler scheduler, RunQueries queries) {
        this.scheduler = scheduler;
        this.queries = queries;
    }

    @GetMapping
    List<Map<String, Object>> jobs() {
        return scheduler.catalog().entries().stream().map(this::describe).toList();
    }

    @GetMapping("/{job}")
    Map<String, Object> job(@PathVariable String job) {
        return describe(entry(job));
    }

    private Map<String, Object> describe(JobCatalog.Entry e) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", e.name());
        m.put("file", e.file().toString());
        m.put("error", e.error());
        if (e.ok()) {
            ScheduleSpec s = e.schedule();
            m.put("schedule", s.scheduled() ? s.intervals().text() : null);
            m.put("timezone", s.zone().getId());
            m.put("catchup", s.catchup());
            m.put("maxActiveRuns", s.maxActiveRuns());
            m.put("retries", s.retries());
            m.put("retryDelaySeconds", s.retryDelay().toSeconds());
            m.put("startDate", s.startDate() == null ? null : s.startDate().toString());
            m.put("nextRunAt", scheduler.nextRunAt(e.name()).map(Object::toString).orElse(null));
            m.put("tasks", e.definition().tasks().stream().map(TaskSpec::name).toList());
            List<Map<String, Object>> last = queries.runs(e.name(), 1);
            m.put("lastRun", last.isEmpty() ? null : last.getFirst());
        }
        return m;
    }

    @GetMapping("/{job}/runs")
    List<Map<String, Object>> runs(@PathVariable String job, @RequestParam(defaultValue = "60") int limit) {
        entry(job);
        if (limit < 1 || limit > 1000) throw ApiException.bad("limit must be 1..1000");
        return queries.runs(job, limit);
    }

    /** Queues a run for a logical date now (default: today in the job's time zone). */
    @PostMapping("/{job}/trigger")
    Map<String, Object> trigger(@PathVariable String job, @RequestParam(required = false) String date) {
        usable(job);
        ScheduledRun r = scheduler.trigger(job, parseDate(date));
        return Map.of("job", job, "logicalDate", r.logicalDate().toString(), "state", r.state(), "trigger", r.trigger());
    }

    /** Resumes a failed or stopped run (it continues from its last committed chunk). */
    @PostMapping("/{job}/runs/{date}/restart")
    Map<String, Object> restart(@PathVariable String job, @PathVariable String date,
                                @RequestParam(defaultValue = "") String params) {
        usable(job);
        LocalDate d = parseDate(date);
        Optional<ScheduledRun> row = scheduler.store().findByDate(job, d, params);
        if (row.isPresent()) {
            if (!scheduler.restart(job, row.get().intervalStart())) {
                throw new ApiException(HttpStatus.CONFLICT, "the run for " + d + " is " + row.get().state()
                        + "; only failed or stopped runs restart");
            }
        } else {
            if (!params.isEmpty()) throw new ApiException(HttpStatus.CONFLICT,
                    "runs with --param values are restarted with `vlm-batch restart`");
            if (queries.runByDate(job, d, params).isEmpty()) throw ApiException.notFound("no run of " + job + " for " + d);
            scheduler.trigger(job, d); // a CLI run: the scheduler takes it over and resumes it
        }
        return Map.of("job", job, "logicalDate", d.toString(), "state", "queued");
    }

    @PostMapping("/{job}/runs/{date}/stop")
    Map<String, Object> stop(@PathVariable String job, @PathVariable String date, @RequestParam(defaultValue = "") String params) {
        usable(job);
        LocalDate d = parseDate(date);
        ScheduledRun row = scheduler.store().findByDate(job, d, params)
                .orElseThrow(() -> new ApiException(HttpStatus.CONFLICT, "the run for " + d + " was not started by this scheduler; stop its process instead"));
        if (!scheduler.stop(job, row.intervalStart())) {
            throw new ApiException(HttpStatus.CONFLICT, "the run for " + d + " is " + row.state() + "; nothing to stop");
        }
        return Map.of("job", job, "logicalDate", d.toString(), "stopRequested", true);
    }

    private JobCatalog.Entry entry(String job) {
        return scheduler.catalog().get(job).orElseThrow(() -> ApiException.notFound("no job named " + job));
    }

    private void usable(String job) {
        JobCatalog.Entry e = entry(job);
        if (!e.ok()) throw new ApiException(HttpStatus.CONFLICT, "the job file does not load: " + e.error());
    }

    private static LocalDate parseDate(String date) {
        if (date == null || date.isBlank()) return null;
        try {
            return LocalDate.parse(date);
        } catch (DateTimeParseException e) {
            throw ApiException.bad("date must be YYYY-MM-DD, got '" + date + "'");
        }
    }
}
