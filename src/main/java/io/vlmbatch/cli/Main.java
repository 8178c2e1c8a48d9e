package io.vlmbatch.cli;

import io.vlmbatch.config.CoreConfig;
import io.vlmbatch.config.InferWorkerConfig;
import io.vlmbatch.config.PipelineConfig;
import io.vlmbatch.config.PipelineJobs;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.JobFileException;
import io.vlmbatch.job.JobFileLoader;
import io.vlmbatch.job.OutputPaths;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.run.Errors;
import io.vlmbatch.run.RunInference;
import io.vlmbatch.run.RunLifecycle;
import io.vlmbatch.store.CsvExporter;
import io.vlmbatch.store.JsonlExporter;
import io.vlmbatch.store.RunStore;
import io.vlmbatch.store.WorkItemStore;
import java.time.LocalDate;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.boot.SpringApplication;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * Runs one command line: parse it (one parser for every command), check the job file before anything
 * starts (exit 2 when either is wrong), then bring up the command's Spring context: serve's web one, or
 * the database + Batch repository (+ the pipeline for run/restart/retry/plan, which binds the job file
 * late, from the run's JobParameters).
 */
public final class Main {
    public static final int EXIT_FAILED = 1;
    public static final int EXIT_USAGE = 2;
    /** The commands that start or resume a run: their output must be writable, and a lost database is resumed with restart. */
    private static final Set<String> RUN_COMMANDS = Set.of("run", "restart", "retry");
    private static final String LOG_FILE_GIVEN = System.getProperty("logging.file.name", System.getenv("LOGGING_FILE_NAME"));

    private Main() {}

    public static int run(String[] args) {
        Invocation inv;
        JobDefinition def = null;
        RunParameters params = null;
        logToDataFolder();
        try {
            inv = CommandLine.parse(args);
            if (inv.help()) {
                System.out.println(inv.command() == null ? CommandLine.usage() : CommandLine.usage(inv.command()));
                return 0;
            }
            if (inv.command().equals("serve")) return ServeCommand.run(inv);
            if (inv.command().equals("worker")) return WorkerCommand.run(inv);
            if (inv.jobFile() != null) {
                def = JobFileLoader.load(inv.jobFile(), inv.sets());
                if (inv.task() != null && !def.taskNames().contains(inv.task())) {
                    throw new UsageException("--task " + inv.task() + ": the job has no such task (it has " + def.taskNames() + ")");
                }
                params = new RunParameters(inv.date() == null ? LocalDate.now() : inv.date(), inv.params());
                checkRendering(def, params);
                // the export step runs last: an output it cannot write must stop the run before any inference
                if (RUN_COMMANDS.contains(inv.command()) && inv.executionId() == null) {
                    OutputPaths.check(def, params);
                }
            }
        } catch (UsageException e) {
            System.err.println("error: " + e.getMessage());
            System.err.println(args.length > 0 ? CommandLine.usage(args[0]) : CommandLine.usage());
            return EXIT_USAGE;
        } catch (JobFileException e) {
            System.err.println("error: " + e.getMessage());
            return EXIT_USAGE;
        }

        if (inv.command().equals("backfill")) return BackfillCommand.run(inv, def);
        boolean pipeline = java.util.List.of("run", "restart", "plan", "retry").contains(inv.command());
        SpringApplication app = pipeline ? new SpringApplication(CoreConfig.class, PipelineConfig.class)
                : new SpringApplication(CoreConfig.class);
        app.setRegisterShutdownHook(true);
        // The job file reaches the job through its JobParameters; what must be known before the context
        // exists stays a property: the pool is sized when the database comes up, before any job starts.
        Map<String, Object> defaults = new HashMap<>();
        if (def != null) defaults.put("vlm.db.pool-size", def.run().partitions() + 4);
        if (inv.model() != null) defaults.put("vlm.model-dir", inv.model().toAbsolutePath().toString());
        app.setDefaultProperties(defaults);
        try (ConfigurableApplicationContext ctx = app.run()) {
            if (inv.command().equals("plan")) {
                return new PlanCommand(def, params, ctx.getBean(RunInference.class), ctx.getBean(io.vlmbatch.ledger.LedgerStore.class),
                        InferWorkerConfig.MAX_IMAGE_BYTES).execute(inv);
            }
            if (inv.command().equals("retry")) {
                return new RetryCommand(def, params, ctx.getBean(JobRepository.class), ctx.getBean(RunLifecycle.class),
                        ctx.getBean(PipelineJobs.class), ctx.getBean(RunInference.class), ctx.getBean(io.vlmbatch.ledger.Attempts.class),
                        ctx.getBean(WorkItemStore.class)).execute(inv);
            }
            Commands commands = new Commands(ctx.getBean(JobRepository.class), ctx.getBeanProvider(RunLifecycle.class),
                    ctx.getBean(RunStore.class), ctx.getBean(WorkItemStore.class), ctx.getBean(CsvExporter.class),
                    ctx.getBeanProvider(PipelineJobs.class), ctx.getBeanProvider(RunInference.class), def, params);
            commands.setJsonlExporter(ctx.getBean(JsonlExporter.class));
            commands.setWorkers(new io.vlmbatch.worker.WorkerStore(ctx.getBean(org.springframework.jdbc.core.JdbcTemplate.class),
                    new org.springframework.transaction.support.TransactionTemplate(
                            ctx.getBean(org.springframework.transaction.PlatformTransactionManager.class))));
            return commands.execute(inv);
        } catch (Exception e) {
            System.err.println("error: " + Errors.rootMessage(e));
            if (Errors.lostDatabase(e)) {
                boolean run = RUN_COMMANDS.contains(inv.command());
                System.err.println("the connection to PostgreSQL was lost; what was stored before is kept. Once the database answers again, "
                        + (run && inv.executionId() == null ? "resume the run with " + Commands.restartCommand(def, params) : "run the command again"));
            }
            return EXIT_FAILED;
        }
    }

    /** The full log (stack traces included) is a file beside the embedded database; the terminal gets one line per error. */
    private static void logToDataFolder() {
        if (LOG_FILE_GIVEN == null || LOG_FILE_GIVEN.isBlank()) {
            System.setProperty("logging.file.name", io.vlmbatch.config.AppPaths.fromEnvironment().logs().resolve("vlm-batch.log").toString());
        }
    }

    /** Path variables are checked by the loader; here, that every {{ params.x }} has its --param x=... */
    private static void checkRendering(JobDefinition def, RunParameters params) {
        Map<String, String> paths = new LinkedHashMap<>();
        paths.put("source.folder", def.source().folder());
        paths.put("source.manifest", def.source().manifest());
        paths.put("source.s3", def.source().s3());
        paths.put("output.csv", def.csv());
        paths.forEach((field, value) -> {
            try {
                params.render(value, def.name());
            } catch (IllegalArgumentException e) {
                // the loader accepted the variable, so what is missing is a --param
                throw new UsageException(field + ": " + e.getMessage());
            }
        });
    }
}
