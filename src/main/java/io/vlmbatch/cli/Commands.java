package io.vlmbatch.cli;

import io.vlmbatch.config.PipelineJobs;
import io.vlmbatch.inference.InferenceService;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.run.Errors;
import io.vlmbatch.run.RunInference;
import io.vlmbatch.run.RunKeys;
import io.vlmbatch.run.RunLifecycle;
import io.vlmbatch.run.RunPlan;
import io.vlmbatch.run.RunRefusedException;
import io.vlmbatch.store.CsvExporter;
import io.vlmbatch.store.JsonlExporter;
import io.vlmbatch.store.ArchiveCounts;
import io.vlmbatch.store.ItemCounts;
import io.vlmbatch.store.RunStore;
import io.vlmbatch.store.WorkItemStore;
import java.io.PrintStream;
import java.util.List;
import org.springframework.batch.core.BatchStatus;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.job.JobInstance;
import org.springframework.batch.core.job.parameters.JobParameters;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.beans.factory.ObjectProvider;

/** The four commands. Each returns the process exit code: 0 success, 1 failure. */
public class Commands {
    private final JobRepository repository;
    private final ObjectProvider<RunLifecycle> lifecycle; // run/restart only
    private final RunStore runs;
    private final WorkItemStore items;
    private final CsvExporter exporter;
    private final ObjectProvider<PipelineJobs> jobs; // run/restart only
    private final ObjectProvider<RunInference> inference; // run/restart only
    private final JobDefinition def;
    private final RunParameters params;
    private JsonlExporter jsonlExporter;
    private io.vlmbatch.worker.WorkerStore workers;
    private final PrintStream out = System.out;
    private final boolean tty = "1".equals(System.getenv("VLM_TTY"));

    public Commands(JobRepository repository, ObjectProvider<RunLifecycle> lifecycle, RunStore runs, WorkItemStore items,
                    CsvExporter exporter, ObjectProvider<PipelineJobs> jobs, ObjectProvider<RunInference> inference,
                    JobDefinition def, RunParameters params) {
        this.repository = repository;
        this.lifecycle = lifecycle;
        this.runs = runs;
        this.items = items;
        this.exporter = exporter;
        this.jobs = jobs;
        this.inference = inference;
        this.def = def;
        this.params = params;
    }

    /** For export --jsonl (a setter, so the constructor stays as the run lifecycle defines it). */
    @org.springframework.beans.factory.annotation.Autowired
    public void setJsonlExporter(JsonlExporter jsonlExporter) {
        this.jsonlExporter = jsonlExporter;
    }

    /** For status: the remote workers that ran each run's partitions. */
    public void setWorkers(io.vlmbatch.worker.WorkerStore workers) {
        this.workers = workers;
    }

    public int execute(Invocation inv) throws Exception {
        return switch (inv.command()) {
            case "run" -> run();
            case "restart" -> restart(inv);
            case "status" -> status(inv);
            case "export" -> export(inv);
            default -> throw new UsageException("unknown command " + inv.command());
        };
    }

    private int run() throws Exception {
        RunParameters p = params;
        JobParameters jp = RunKeys.launchParameters(def, List.of(), p);
        RunPlan plan = lifecycle.getObject().prepare(def.name(), jp, RunLifecycle.Intent.START, false);
        String what = describe(def, p);
        switch (plan.action()) {
            case ALREADY_DONE -> {
                // Idempotent like a nightly cron wants: the run's results exist, so asking again succeeds.
                out.println(what + " already completed (execution " + plan.previous().getId() + "); nothing to do. Export it with `vlm-batch export "
                        + def.file() + " --date " + p.logicalDate() + " --csv FILE`, or run another --date/--param.");
                return 0;
            }
            case REFUSED -> {
                String hint = plan.refusal() == RunPlan.Refusal.EXISTS
                        ? ". Resume it with " + restartCommand(def, p) + "." : "";
                System.err.println(what + ": " + plan.message() + hint);
                return 1;
            }
            default -> { }
        }
        InferenceService service = inference.getObject().start(def.name(), jp, def.inference());
        out.println("running " + what);
        JobExecution execution;
        try (ProgressReporter progress = progress(def.name(), jp)) {
            execution = lifecycle.getObject().execute(plan, jobs.getObject().jobFor(def.name()), jp);
            printInferenceSummary(def, service);
        } finally {
            inference.getObject().release(def.name(), jp);
        }
        return report(def, p, execution);
    }

    private void printInferenceSummary(JobDefinition def, InferenceService service) {
        if (def.run().remote()) {
            out.println("inference: requests sent by the remote workers (`vlm-batch status " + def.name() + "` lists them)");
            return;
        }
        String s = service.summary();
        if (s != null) out.println("inference: " + s);
    }

    private int restart(Invocation inv) throws Exception {
        RunPlan plan;
        if (inv.executionId() != null) {
            JobExecution named = repository.getJobExecution(inv.executionId());
            if (named == null) {
                System.err.println("no job execution " + inv.executionId());
                return 1;
            }
            if (!named.getJobInstance().getJobName().equals(def.name())) {
                System.err.println("execution " + inv.executionId() + " belongs to job " + named.getJobInstance().getJobName()
                        + ", not " + def.name());
                return 1;
            }
            plan = lifecycle.getObject().prepare(named, inv.force());
        } else {
            RunParameters p = params;
            plan = lifecycle.getObject().prepare(def.name(), RunKeys.jobParameters(p), RunLifecycle.Intent.RESUME, inv.force());
            if (plan.refusal() == RunPlan.Refusal.NO_RUN) {
                System.err.println("no run of " + describe(def, p) + " to restart; start one with `vlm-batch run`");
                return 1;
            }
        }
        switch (plan.action()) {
            case ALREADY_DONE -> {
                out.println("execution " + plan.previous().getId() + " already completed; nothing to restart");
                return 0;
            }
            case REFUSED -> {
                System.err.println(plan.message());
                return 1;
            }
            default -> plan.notes().forEach(out::println);
        }
        // the run's own parameters (a retry attempt's included), with the job file as given now
        JobParameters jp = RunKeys.relaunchParameters(plan.previous().getJobParameters(), def.file());
        InferenceService service = inference.getObject().start(def.name(), jp, def.inference());
        RunParameters p = RunKeys.runParameters(jp);
        long runId = plan.previous().getJobInstance().getInstanceId();
        out.println("restarting " + describe(def, p) + " from execution " + plan.previous().getId());
        JobExecution execution;
        try (ProgressReporter progress = new ProgressReporter(items, () -> runId, tty, out).start()) {
            execution = lifecycle.getObject().execute(plan, jobs.getObject().jobFor(def.name()), jp);
            printInferenceSummary(def, service);
        } catch (RunRefusedException e) {
            System.err.println(e.getMessage());
            return 1;
        } finally {
            inference.getObject().release(def.name(), jp);
        }
        return report(def, p, execution);
    }

    private int status(Invocation inv) {
        String jobName = inv.jobName();
        if (inv.jobFile() != null) jobName = def.name();
        List<RunStore.RunRow> rows = runs.list(jobName, 50);
        if (rows.isEmpty()) {
            out.println(jobName == null ? "no runs yet" : "no runs of " + jobName + " yet");
            return 0;
        }
        out.printf("%-24s %-10s %-16s %6s %-10s %-19s %-19s %8s %8s %8s %8s%n", "JOB", "DATE", "PARAMS", "EXEC", "STATUS",
                "STARTED", "ENDED", "DONE", "FAILED", "PENDING", "REUSED");
        for (RunStore.RunRow r : rows) {
            out.printf("%-24s %-10s %-16s %6s %-10s %-19s %-19s %8d %8d %8d %8d%n", r.jobName(), r.logicalDate(),
                    r.params().isEmpty() ? "-" : r.params(), r.executionId() == null ? "-" : r.executionId(),
                    r.status() == null ? "-" : r.status(), time(r.started()), time(r.ended()), r.done(), r.failed(), r.pending(), r.reused());
        }
        for (RunStore.RunRow r : rows) {
            ArchiveCounts archives = runs.archiveCounts(r.runId());
            if (archives.any()) out.printf("%s %s%s: %s%n", r.jobName(), r.logicalDate(), r.params().isEmpty() ? "" : " [" + r.params() + "]", archives.line());
        }
        if (workers != null) printWorkers(rows);
        return 0;
    }

    /** Under each run whose partitions ran on remote workers: each worker, what it ran, and what was lost with it. */
    private void printWorkers(List<RunStore.RunRow> rows) {
        for (RunStore.RunRow r : rows) {
            var ws = workers.workersOfRun(r.runId());
            if (ws.isEmpty()) continue;
            out.printf("workers of %s %s%s:%n", r.jobName(), r.logicalDate(), r.params().isEmpty() ? "" : " [" + r.params() + "]");
            for (var w : ws) {
                out.printf("  %-32s pid %-8d %5d partitions %8d items%s%s%n", w.host(), w.pid(), w.partitions(), w.items(),
                        w.lost() == 0 ? "" : "  " + w.lost() + " lost with it",
                        w.stopped() ? "  (stopped)" : w.lastSeen() > 15 ? "  (last heartbeat " + w.lastSeen() + " s ago)" : "");
            }
        }
    }

    private static String time(java.time.LocalDateTime t) {
        return t == null ? "-" : t.withNano(0).toString().replace('T', ' ');
    }

    private int export(Invocation inv) throws Exception {
        RunParameters p = params;
        JobInstance instance = repository.getJobInstance(def.name(), RunKeys.jobParameters(p));
        if (instance == null) {
            System.err.println("no run of " + describe(def, p));
            return 1;
        }
        ItemCounts c = items.counts(instance.getInstanceId());
        String counts = " (" + c.done() + " done, " + c.failed() + " failed, " + c.pending() + " pending)";
        if (inv.csv() != null) {
            long rows = exporter.export(instance.getInstanceId(), def.taskNames(), inv.csv(), def.csvRaw());
            out.println("wrote " + rows + " rows to " + inv.csv() + counts);
        }
        if (inv.jsonl() != null) {
            long records = jsonlExporter.exportItems(instance.getInstanceId(), def.taskNames(), inv.jsonl());
            out.println("wrote " + records + " records to " + inv.jsonl() + counts);
        }
        return 0;
    }

    private ProgressReporter progress(String jobName, JobParameters jp) {
        Long[] id = {null};
        return new ProgressReporter(items, () -> {
            if (id[0] == null) {
                JobInstance i = repository.getJobInstance(jobName, jp);
                if (i != null) id[0] = i.getInstanceId();
            }
            return id[0];
        }, tty, out).start();
    }

    private int report(JobDefinition def, RunParameters p, JobExecution execution) {
        long runId = execution.getJobInstance().getInstanceId();
        ItemCounts c = items.counts(runId);
        out.printf("%s: %s (execution %d): %d images, %d done (%d reused from earlier runs, %d asked), %d failed, %d pending%n",
                describe(def, p), execution.getStatus(), execution.getId(), c.total(), c.done(), c.reused(), c.asked(),
                c.failed(), c.pending());
        ArchiveCounts archives = runs.archiveCounts(runId);
        if (archives.any()) out.println(archives.line());
        if (c.failed() > 0) out.println("failed items and their reasons are in the CSV's error column and in `vlm_work_item.error`");
        if (execution.getStatus() == BatchStatus.COMPLETED) return 0;
        for (String cause : Errors.distinctCauses(execution.getAllFailureExceptions())) {
            System.err.println("error: " + cause);
        }
        System.err.println("the run did not complete; after fixing the cause, resume it with " + restartCommand(def, p));
        return 1;
    }

    /** The command that resumes the run of def for p. */
    static String restartCommand(JobDefinition def, RunParameters p) {
        return "`vlm-batch restart " + def.file() + " --date " + p.logicalDate() + paramsFlags(p) + "`";
    }

    private static String paramsFlags(RunParameters p) {
        StringBuilder b = new StringBuilder();
        p.params().forEach((k, v) -> b.append(" --param ").append(k).append('=').append(v));
        return b.toString();
    }

    private static String describe(JobDefinition def, RunParameters p) {
        return "job " + def.name() + " for " + p.logicalDate() + (p.params().isEmpty() ? "" : " [" + p.paramsKey() + "]");
    }


}
