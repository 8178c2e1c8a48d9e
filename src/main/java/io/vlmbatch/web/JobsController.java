package io.vlmbatch.web;

import io.vlmbatch.job.TaskSpec;
import io.vlmbatch.run.RunOwnership;
import io.vlmbatch.schedule.JobCatalog;
import io.vlmbatch.job.ScheduleSpec;
import io.vlmbatch.schedule.ScheduledRun;
import io.vlmbatch.schedule.Scheduler;
import io.vlmbatch.store.RunStore;
import java.time.LocalDate;
import java.time.format.DateTimeParseException;
import java.util.List;
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
    private final RunStore runs;
    private final RunOwnership ownership;

    JobsController(Scheduler scheduler, RunQueries queries, RunStore runs, RunOwnership ownership) {
        this.scheduler = scheduler;
        this.queries = queries;
        this.runs = runs;
        this.ownership = ownership;
    }

    @GetMapping
    List<JobView> jobs() {
        return scheduler.catalog().entries().stream().map(this::describe).toList();
    }

    @GetMapping("/{job}")
    JobView job(@PathVariable String job) {
        return describe(entry(job));
    }

    private JobView describe(JobCatalog.Entry e) {
        if (!e.ok()) return JobView.broken(e.name(), e.file().toString(), e.error());
        ScheduleSpec s = e.schedule();
        List<RunSummary> last = queries.runs(e.name(), 1);
        return new JobView(e.name(), e.file().toString(), null, s.scheduled() ? s.intervals().text() : null, s.zone().getId(),
                s.catchup(), s.maxActiveRuns(), s.retries(), s.retryDelay().toSeconds(),
                s.startDate() == null ? null : s.startDate().toString(),
                scheduler.nextRunAt(e.name()).map(Object::toString).orElse(null),
                e.definition().tasks().stream().map(TaskSpec::name).toList(), last.isEmpty() ? null : last.getFirst());
    }

    @GetMapping("/{job}/runs")
    List<RunSummary> runs(@PathVariable String job, @RequestParam(defaultValue = "60") int limit) {
        entry(job);
        if (limit < 1 || limit > 1000) throw ApiException.bad("limit must be 1..1000");
        return queries.runs(job, limit);
    }

    /** Queues a run for a logical date now (default: today in the job's time zone). */
    @PostMapping("/{job}/trigger")
    RunAction trigger(@PathVariable String job, @RequestParam(required = false) String date) {
        usable(job);
        ScheduledRun r = scheduler.trigger(job, parseDate(date));
        return new RunAction(job, r.logicalDate().toString(), r.state(), r.trigger(), null);
    }

    /** Resumes a failed or stopped run (it continues from its last committed chunk). */
    @PostMapping("/{job}/runs/{date}/restart")
    RunAction restart(@PathVariable String job, @PathVariable String date,
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
            long runId = queries.runByDate(job, d, params).orElseThrow(() -> ApiException.notFound("no run of " + job + " for " + d));
            // A CLI run: the scheduler resumes it (through RunLifecycle), but never from a live owner.
            Optional<RunStore.Owner> owner = runs.owner(runId);
            if (owner.isPresent() && ownership.alive(owner.get())) {
                throw new ApiException(HttpStatus.CONFLICT, "the run for " + d + " is still running ("
                        + RunOwnership.describe(owner.get()) + "); stop that process, or use `vlm-batch restart --force`");
            }
            scheduler.trigger(job, d);
        }
        return new RunAction(job, d.toString(), "queued", null, null);
    }

    @PostMapping("/{job}/runs/{date}/stop")
    RunAction stop(@PathVariable String job, @PathVariable String date, @RequestParam(defaultValue = "") String params) {
        usable(job);
        LocalDate d = parseDate(date);
        ScheduledRun row = scheduler.store().findByDate(job, d, params)
                .orElseThrow(() -> new ApiException(HttpStatus.CONFLICT, "the run for " + d + " was not started by this scheduler; stop its process instead"));
        if (!scheduler.stop(job, row.intervalStart())) {
            throw new ApiException(HttpStatus.CONFLICT, "the run for " + d + " is " + row.state() + "; nothing to stop");
        }
        return new RunAction(job, d.toString(), row.state(), null, true);
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
