package io.vlmbatch.web;

import io.vlmbatch.job.TaskSpec;
import io.vlmbatch.run.RunOwnership;
import io.vlmbatch.schedule.Backfill;
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

/** Jobs, their runs by logical date, the plan of a date, and the actions on runs: trigger, backfill, restart, stop, retry. */
@RestController
@RequestMapping("/api/jobs")
class JobsController {
    private final Scheduler scheduler;
    private final RunQueries queries;
    private final RunStore runs;
    private final RunOwnership ownership;
    private final JobPlans plans;

    JobsController(Scheduler scheduler, RunQueries queries, RunStore runs, RunOwnership ownership, JobPlans plans) {
        this.scheduler = scheduler;
        this.queries = queries;
        this.runs = runs;
        this.ownership = ownership;
        this.plans = plans;
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

    /**
     * Queues the runs of the logical dates from..to (both included) as `vlm-batch backfill` does; they
     * start as the job's max_active_runs allows. reprocess: none (default), failed or completed.
     */
    @PostMapping("/{job}/backfill")
    BackfillView backfill(@PathVariable String job, @RequestParam(required = false) String from,
                          @RequestParam(required = false) String to, @RequestParam(defaultValue = "none") String reprocess) {
        usable(job);
        LocalDate f = parseDate(from);
        LocalDate t = parseDate(to);
        if (f == null || t == null) throw ApiException.bad("from and to are required (YYYY-MM-DD, both included)");
        Backfill.Reprocess mode = Backfill.Reprocess.parse(reprocess); // IllegalArgumentException: 400
        List<Backfill.Decision> decisions = scheduler.backfill(job, f, t, mode);
        return BackfillView.of(job, f, t, mode, decisions);
    }

    /**
     * Asks the failed items of a completed run again, as `vlm-batch retry JOB --date D` does: a new attempt,
     * run by the scheduler, whose answers replace the failed ones (the earlier answers stay in the history).
     */
    @PostMapping("/{job}/runs/{date}/retry")
    RunAction retry(@PathVariable String job, @PathVariable String date, @RequestParam(defaultValue = "") String params) {
        usable(job);
        LocalDate d = parseDate(date);
        if (d == null) throw ApiException.bad("date must be YYYY-MM-DD");
        long runId = queries.runByDate(job, d, params).orElseThrow(() -> ApiException.notFound("no run of " + job + " for " + d));
        String status = queries.batchStatus(runId);
        if (!"COMPLETED".equals(status)) {
            throw new ApiException(HttpStatus.CONFLICT, "the run for " + d + " has not completed (" + (status == null ? "not started" : status)
                    + "); restart it before retrying its failed items");
        }
        if (!scheduler.retryFailed(job, d, params)) {
            throw new ApiException(HttpStatus.CONFLICT, "the run for " + d + " is queued or running; retry it once it has ended");
        }
        return new RunAction(job, d.toString(), "queued", null, null);
    }

    /** What the run of a date (default: today) would ask, reuse and cost, without running anything. */
    @GetMapping("/{job}/plan")
    JobPlans.PlanView plan(@PathVariable String job, @RequestParam(required = false) String date) {
        usable(job);
        LocalDate d = parseDate(date);
        JobCatalog.Entry e = entry(job);
        return plans.plan(e, d != null ? d : scheduler.now().atZone(e.schedule().zone()).toLocalDate());
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
            throw ApiException.bad("date must be YYYY-MM-DD, got '" + (date.length() > 40 ? date.substring(0, 40) + "…" : date) + "'");
        }
    }
}
