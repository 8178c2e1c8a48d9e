package io.vlmbatch.cli;

import io.vlmbatch.config.AppPaths;
import io.vlmbatch.config.CoreConfig;
import io.vlmbatch.config.PipelineConfig;
import io.vlmbatch.config.PipelineJobs;
import io.vlmbatch.ledger.Attempts;
import io.vlmbatch.ledger.Retry;
import io.vlmbatch.run.RunInference;
import io.vlmbatch.run.RunLifecycle;
import java.nio.file.Path;
import java.util.HashMap;
import org.springframework.batch.core.launch.JobOperator;
import org.springframework.batch.core.repository.JobRepository;
import io.vlmbatch.inference.EmbeddedInferenceServer;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.run.Errors;
import io.vlmbatch.schedule.Backfill;
import io.vlmbatch.schedule.BatchRunLauncher;
import io.vlmbatch.schedule.JobCatalog;
import io.vlmbatch.schedule.ScheduleStore;
import io.vlmbatch.schedule.ScheduledRun;
import io.vlmbatch.schedule.Scheduler;
import io.vlmbatch.store.ItemCounts;
import io.vlmbatch.store.WorkItemStore;
import java.io.PrintStream;
import java.time.Clock;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import javax.sql.DataSource;
import org.springframework.boot.SpringApplication;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.jdbc.core.JdbcTemplate;

/**
 * `vlm-batch backfill JOB --from D1 --to D2 [--reprocess MODE]`: queues the runs of the range (Backfill)
 * and executes them in this process the way `serve` does (the scheduler's queue, so the job's
 * max_active_runs holds here and across every scheduler on the database; each run through the run
 * lifecycle, sharing one embedded inference server), then prints what happened to each date.
 */
final class BackfillCommand {
    private static final Duration TICK = Duration.ofSeconds(1);
    private static final Set<String> ENDED = Set.of("success", "failed", "stopped");

    private final PrintStream out = System.out;

    private BackfillCommand() {}

    static int run(Invocation inv, JobDefinition def) {
        Backfill.Reprocess mode = Backfill.Reprocess.parse(inv.range().reprocess());
        SpringApplication app = new SpringApplication(CoreConfig.class, PipelineConfig.class);
        app.setRegisterShutdownHook(true);
        // as `run` sizes it, for max_active_runs runs at once
        Map<String, Object> defaults = new HashMap<>();
        defaults.put("vlm.db.pool-size", def.schedule().maxActiveRuns() * (def.run().partitions() + 2) + 4);
        Path model = inv.model() == null ? null : inv.model().toAbsolutePath();
        if (model != null) defaults.put("vlm.model-dir", model.toString());
        app.setDefaultProperties(defaults);
        AppPaths paths = AppPaths.fromEnvironment();
        // one embedded server for the runs executing at once, as in serve (RunInference finds it)
        try (EmbeddedInferenceServer embedded = new EmbeddedInferenceServer(paths.home(), model, paths.logs())) {
            app.addInitializers(ctx -> ctx.getBeanFactory().registerSingleton("embeddedInferenceServer", embedded));
            try (ConfigurableApplicationContext ctx = app.run()) {
                JobRepository repository = ctx.getBean(JobRepository.class);
                RunLifecycle lifecycle = ctx.getBean(RunLifecycle.class);
                BatchRunLauncher launcher = new BatchRunLauncher(lifecycle, ctx.getBean(PipelineJobs.class), ctx.getBean(RunInference.class),
                        repository, ctx.getBean(JobOperator.class), new Retry(repository, lifecycle, ctx.getBean(Attempts.class)));
                return new BackfillCommand().execute(ctx, launcher, def, inv, mode);
            }
        } catch (Exception e) {
            System.err.println("error: " + Errors.rootMessage(e));
            return Main.EXIT_FAILED;
        }
    }

    private int execute(ConfigurableApplicationContext ctx, BatchRunLauncher launcher, JobDefinition def, Invocation inv,
                        Backfill.Reprocess mode) throws InterruptedException {
        JobCatalog catalog = JobCatalog.of(def.file().toAbsolutePath().getParent(),
                List.of(new JobCatalog.Entry(def.file(), def.name(), def, def.schedule(), null)));
        ScheduleStore store = new ScheduleStore(ctx.getBean(DataSource.class));
        Scheduler scheduler = new Scheduler(catalog, store, launcher, Clock.systemUTC(),
                Duration.ofSeconds(120));
        List<Backfill.Decision> decisions;
        try {
            decisions = scheduler.backfill(def.name(), inv.range().from(), inv.range().to(), mode);
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            return Main.EXIT_USAGE;
        }
        List<Backfill.Decision> queued = decisions.stream().filter(Backfill.Decision::queued).toList();
        out.printf("backfill of job %s, %s..%s (--reprocess %s): %d run%s, %d to run, %d skipped; at most %d at once%n",
                def.name(), inv.range().from(), inv.range().to(), mode.word(), decisions.size(), decisions.size() == 1 ? "" : "s",
                queued.size(), decisions.size() - queued.size(), def.schedule().maxActiveRuns());
        Map<String, String> seen = new HashMap<>();
        while (true) {
            scheduler.tickQueued();
            boolean open = false;
            for (Backfill.Decision d : queued) {
                String state = store.find(def.name(), d.intervalStart()).map(ScheduledRun::state).orElse("gone");
                if (!state.equals(seen.put(label(d), state))) out.println("  " + label(d) + ": " + state);
                if (!ENDED.contains(state) && !state.equals("gone")) open = true;
            }
            // also runs of the job that were queued before (by an interrupted backfill, a trigger while serve was down)
            // and that this process claimed: closing the context under them would cut them off
            if (!open && scheduler.activeRuns() == 0) break;
            Thread.sleep(TICK.toMillis());
        }
        return report(ctx, def, store, decisions);
    }

    private int report(ConfigurableApplicationContext ctx, JobDefinition def, ScheduleStore store, List<Backfill.Decision> decisions) {
        JdbcTemplate jdbc = ctx.getBean(JdbcTemplate.class);
        WorkItemStore items = ctx.getBean(WorkItemStore.class);
        out.printf("%-27s %-10s %s%n", "DATE", "ACTION", "OUTCOME");
        boolean failed = false;
        for (Backfill.Decision d : decisions) {
            String outcome;
            if (!d.queued()) {
                outcome = d.reason();
            } else {
                Optional<ScheduledRun> row = store.find(def.name(), d.intervalStart());
                String state = row.map(ScheduledRun::state).orElse("gone");
                failed |= !state.equals("success");
                outcome = state + counts(jdbc, items, def.name(), d)
                        + row.map(ScheduledRun::lastError).filter(e -> !state.equals("success")).map(e -> ": " + e).orElse("");
            }
            out.printf("%-27s %-10s %s%n", label(d), d.action().word(), outcome);
        }
        return failed ? Main.EXIT_FAILED : 0;
    }

    private static String counts(JdbcTemplate jdbc, WorkItemStore items, String job, Backfill.Decision d) {
        List<Long> ids = jdbc.queryForList("""
                SELECT run_id FROM vlm_run WHERE job_name = ? AND logical_date = ? AND params = ? AND retry_of IS NULL""",
                Long.class, job, d.logicalDate(), d.params());
        if (ids.isEmpty()) return "";
        ItemCounts c = items.counts(ids.getFirst());
        return String.format(" (%d images, %d done: %d reused, %d asked; %d failed, %d pending)", c.total(), c.done(), c.reused(),
                c.asked(), c.failed(), c.pending());
    }

    private static String label(Backfill.Decision d) {
        return d.logicalDate() + (d.params().isEmpty() ? "" : " " + d.params());
    }
}
