package io.vlmbatch.cli;

import io.vlmbatch.batch.RunOwnerListener;
import io.vlmbatch.inference.InferenceService;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.store.CsvExporter;
import io.vlmbatch.store.ItemCounts;
import io.vlmbatch.store.RunStore;
import io.vlmbatch.store.WorkItemStore;
import java.io.PrintStream;
import java.util.List;
import java.util.Optional;
import org.springframework.batch.core.BatchStatus;
import org.springframework.batch.core.job.Job;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.job.JobInstance;
import org.springframework.batch.core.job.parameters.JobParameters;
import org.springframework.batch.core.job.parameters.JobParametersBuilder;
import org.springframework.batch.core.launch.JobOperator;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.beans.factory.ObjectProvider;

/** The four commands. Each returns the process exit code: 0 success, 1 failure. */
public class Commands {
    private final JobRepository repository;
    private final JobOperator operator;
    private final RunStore runs;
    private final WorkItemStore items;
    private final CsvExporter exporter;
    private final ObjectProvider<Job> job;
    private final ObjectProvider<InferenceService> inference;
    private final ObjectProvider<JobDefinition> definition;
    private final ObjectProvider<RunParameters> runParameters;
    private final PrintStream out = System.out;
    private final boolean tty = "1".equals(System.getenv("VLM_TTY"));

    public Commands(JobRepository repository, JobOperator operator, RunStore runs, WorkItemStore items,
                    CsvExporter exporter, ObjectProvider<Job> job, ObjectProvider<InferenceService> inference,
                    ObjectProvider<JobDefinition> definition, ObjectProvider<RunParameters> runParameters) {
        this.repository = repository;
        this.operator = operator;
        this.runs = runs;
        this.items = items;
        this.exporter = exporter;
        this.job = job;
        this.inference = inference;
        this.definition = definition;
        this.runParameters = runParameters;
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

    public static JobParameters jobParameters(RunParameters p) {
        JobParametersBuilder b = new JobParametersBuilder().addLocalDate("date", p.logicalDate());
        p.params().forEach((k, v) -> b.addString("param." + k, v));
        return b.toJobParameters();
    }

    private int run() throws Exception {
        JobDefinition def = definition.getObject();
        RunParameters p = runParameters.getObject();
        JobParameters jp = jobParameters(p);
        JobInstance existing = repository.getJobInstance(def.name(), jp);
        if (existing != null) {
            JobExecution last = repository.getLastJobExecution(existing);
            BatchStatus s = last == null ? BatchStatus.UNKNOWN : last.getStatus();
            String what = describe(def, p);
            if (s == BatchStatus.COMPLETED) {
                // Idempotent like a nightly cron wants: the run's results exist, so asking again succeeds.
                out.println(what + " already completed (execution " + last.getId() + "); nothing to do. Export it with `vlm-batch export "
                        + def.file() + " --date " + p.logicalDate() + " --csv FILE`, or run another --date/--param.");
                return 0;
            }
            System.err.println(what + " exists with status " + s + " (execution " + (last == null ? "?" : last.getId())
                    + "). Resume it with `vlm-batch restart " + def.file() + " --date " + p.logicalDate() + paramsFlags(p) + "`.");
            return 1;
        }
        inference.getObject().start();
        out.println("running " + describe(def, p));
        JobExecution execution;
        try (ProgressReporter progress = progress(def.name(), jp)) {
            execution = operator.start(job.getObject(), jp);
        }
        printInferenceSummary();
        return report(def, p, execution);
    }

    private void printInferenceSummary() {
        String s = inference.getObject().summary();
        if (s != null) out.println("inference: " + s);
    }

    private int restart(Invocation inv) throws Exception {
        JobDefinition def = definition.getObject();
        JobExecution last;
        if (inv.executionId() != null) {
            last = repository.getJobExecution(inv.executionId());
            if (last == null) {
                System.err.println("no job execution " + inv.executionId());
                return 1;
            }
            if (!last.getJobInstance().getJobName().equals(def.name())) {
                System.err.println("execution " + inv.executionId() + " belongs to job " + last.getJobInstance().getJobName()
                        + ", not " + def.name());
                return 1;
            }
            // later executions of the same instance supersede the one named
            JobExecution newest = repository.getLastJobExecution(last.getJobInstance());
            if (newest != null) last = newest;
        } else {
            RunParameters p = runParameters.getObject();
            JobInstance instance = repository.getJobInstance(def.name(), jobParameters(p));
            if (instance == null) {
                System.err.println("no run of " + describe(def, p) + " to restart; start one with `vlm-batch run`");
                return 1;
            }
            last = repository.getLastJobExecution(instance);
        }
        if (last.getStatus() == BatchStatus.COMPLETED) {
            out.println("execution " + last.getId() + " already completed; nothing to restart");
            return 0;
        }
        if (last.getStatus() == BatchStatus.ABANDONED) {
            System.err.println("execution " + last.getId() + " was abandoned and cannot be restarted");
            return 1;
        }
        long runId = last.getJobInstance().getInstanceId();
        if (last.isRunning()) {
            Optional<RunStore.Owner> owner = runs.owner(runId);
            if (owner.isPresent() && stillRunning(owner.get())) {
                System.err.println("execution " + last.getId() + " is still running (pid " + owner.get().pid() + " on "
                        + owner.get().host() + "); stop it before restarting");
                return 1;
            }
            // The process died without updating the repository (kill -9, power loss): Batch 6's recover()
            // marks the execution and its unfinished steps FAILED, which makes it restartable.
            out.println("execution " + last.getId() + " was left " + last.getStatus()
                    + " by a process that is gone; marking it FAILED before restarting");
            last = operator.recover(last);
        }
        inference.getObject().start();
        RunParameters p = runParametersOf(last);
        out.println("restarting " + describe(def, p) + " from execution " + last.getId());
        JobExecution execution;
        try (ProgressReporter progress = new ProgressReporter(items, () -> runId, tty, out).start()) {
            execution = operator.restart(last);
        }
        printInferenceSummary();
        return report(def, p, execution);
    }

    private static boolean stillRunning(RunStore.Owner owner) {
        if (!owner.host().equals(RunOwnerListener.hostName())) return true; // cannot check another machine: assume so
        return ProcessHandle.of(owner.pid()).map(ProcessHandle::isAlive).orElse(false);
    }

    private static RunParameters runParametersOf(JobExecution e) {
        JobParameters jp = e.getJobParameters();
        java.util.Map<String, String> params = new java.util.TreeMap<>();
        jp.parameters().forEach(param -> {
            if (param.name().startsWith("param.")) params.put(param.name().substring(6), String.valueOf(param.value()));
        });
        return new RunParameters(jp.getLocalDate("date"), params);
    }

    private int status(Invocation inv) {
        String jobName = inv.jobName();
        if (inv.jobFile() != null) jobName = definition.getObject().name();
        List<RunStore.RunRow> rows = runs.list(jobName, 50);
        if (rows.isEmpty()) {
            out.println(jobName == null ? "no runs yet" : "no runs of " + jobName + " yet");
            return 0;
        }
        out.printf("%-24s %-10s %-16s %6s %-10s %-19s %-19s %8s %8s %8s%n", "JOB", "DATE", "PARAMS", "EXEC", "STATUS",
                "STARTED", "ENDED", "DONE", "FAILED", "PENDING");
        for (RunStore.RunRow r : rows) {
            out.printf("%-24s %-10s %-16s %6s %-10s %-19s %-19s %8d %8d %8d%n", r.jobName(), r.logicalDate(),
                    r.params().isEmpty() ? "-" : r.params(), r.executionId() == null ? "-" : r.executionId(),
                    r.status() == null ? "-" : r.status(), time(r.started()), time(r.ended()), r.done(), r.failed(), r.pending());
        }
        return 0;
    }

    private static String time(java.time.LocalDateTime t) {
        return t == null ? "-" : t.withNano(0).toString().replace('T', ' ');
    }

    private int export(Invocation inv) throws Exception {
        JobDefinition def = definition.getObject();
        RunParameters p = runParameters.getObject();
        JobInstance instance = repository.getJobInstance(def.name(), jobParameters(p));
        if (instance == null) {
            System.err.println("no run of " + describe(def, p));
            return 1;
        }
        long rows = exporter.export(instance.getInstanceId(), def.taskNames(), inv.csv(), def.csvRaw());
        ItemCounts c = items.counts(instance.getInstanceId());
        out.println("wrote " + rows + " rows to " + inv.csv() + " (" + c.done() + " done, " + c.failed() + " failed, "
                + c.pending() + " pending)");
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
        out.printf("%s: %s (execution %d): %d images, %d done, %d failed, %d pending%n", describe(def, p),
                execution.getStatus(), execution.getId(), c.total(), c.done(), c.failed(), c.pending());
        if (c.failed() > 0) out.println("failed items and their reasons are in the CSV's error column and in `vlm_work_item.error`");
        if (execution.getStatus() == BatchStatus.COMPLETED) return 0;
        for (Throwable t : execution.getAllFailureExceptions()) {
            System.err.println("error: " + rootMessage(t));
        }
        System.err.println("the run did not complete; after fixing the cause, resume it with `vlm-batch restart "
                + def.file() + " --date " + p.logicalDate() + paramsFlags(p) + "`");
        return 1;
    }

    private static String paramsFlags(RunParameters p) {
        StringBuilder b = new StringBuilder();
        p.params().forEach((k, v) -> b.append(" --param ").append(k).append('=').append(v));
        return b.toString();
    }

    private static String describe(JobDefinition def, RunParameters p) {
        return "job " + def.name() + " for " + p.logicalDate() + (p.params().isEmpty() ? "" : " [" + p.paramsKey() + "]");
    }

    public static String rootMessage(Throwable t) {
        Throwable c = t;
        StringBuilder b = new StringBuilder(String.valueOf(t.getMessage()));
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
            if (c.getMessage() != null && !b.toString().contains(c.getMessage())) b.append(": ").append(c.getMessage());
        }
        return b.toString();
    }

}
