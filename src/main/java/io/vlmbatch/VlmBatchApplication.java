package io.vlmbatch;

import io.vlmbatch.cli.CommandLine;
import io.vlmbatch.cli.Commands;
import io.vlmbatch.cli.Invocation;
import io.vlmbatch.cli.UsageException;
import io.vlmbatch.config.BatchConfig;
import io.vlmbatch.config.DatabaseConfig;
import io.vlmbatch.config.PipelineConfig;
import io.vlmbatch.inference.InferenceService;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.JobFileException;
import io.vlmbatch.job.JobFileLoader;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.run.Errors;
import io.vlmbatch.run.RunConfig;
import io.vlmbatch.run.RunLifecycle;
import io.vlmbatch.store.CsvExporter;
import io.vlmbatch.store.RunStore;
import io.vlmbatch.store.WorkItemStore;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.springframework.batch.core.job.Job;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;

/**
 * Entry point of `vlm-batch`. The command line and the job file are checked before anything starts
 * (exit 2 when they are wrong); only then the Spring context brings up the database, the Batch
 * repository and, for run/restart, the job's steps.
 *
 * No auto-configuration on purpose: every bean is declared in config/, so what runs is what is read.
 */
@SpringBootConfiguration(proxyBeanMethods = false)
@Import({DatabaseConfig.class, RunConfig.class, BatchConfig.class})
public class VlmBatchApplication {
    public static final int EXIT_FAILED = 1;
    public static final int EXIT_USAGE = 2;

    @Bean
    Commands commands(JobRepository repository, RunLifecycle lifecycle, RunStore runs, WorkItemStore items,
                      CsvExporter exporter, ObjectProvider<Job> job, ObjectProvider<InferenceService> inference,
                      ObjectProvider<JobDefinition> definition, ObjectProvider<RunParameters> runParameters) {
        return new Commands(repository, lifecycle, runs, items, exporter, job, inference, definition, runParameters);
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    public static int run(String[] args) {
        // the one web command: scheduler + REST API + UI (io.vlmbatch.web); the others stay non-web
        if (args.length > 0 && args[0].equals("serve")) return io.vlmbatch.web.ServeCommand.run(args);
        Invocation inv;
        JobDefinition def = null;
        RunParameters params = null;
        try {
            inv = CommandLine.parse(args);
            if (inv.jobFile() != null) {
                def = JobFileLoader.load(inv.jobFile(), inv.sets());
                if (inv.task() != null && !def.taskNames().contains(inv.task())) {
                    throw new UsageException("--task " + inv.task() + ": the job has no such task (it has " + def.taskNames() + ")");
                }
                params = new RunParameters(inv.date() == null ? java.time.LocalDate.now() : inv.date(), inv.params());
                checkRendering(def, params);
            }
        } catch (UsageException e) {
            System.err.println("error: " + e.getMessage());
            System.err.println(CommandLine.USAGE);
            return EXIT_USAGE;
        } catch (JobFileException e) {
            System.err.println("error: " + e.getMessage());
            return EXIT_USAGE;
        }

        List<Class<?>> sources = new ArrayList<>(List.of(VlmBatchApplication.class));
        boolean pipeline = List.of("run", "restart", "plan", "retry").contains(inv.command());
        if (pipeline) sources.add(PipelineConfig.class);
        SpringApplication app = new SpringApplication(sources.toArray(Class<?>[]::new));
        app.setRegisterShutdownHook(true);
        JobDefinition definition = def;
        RunParameters runParameters = params;
        app.addInitializers(ctx -> {
            if (definition != null) {
                ctx.getBeanFactory().registerSingleton("jobDefinition", definition);
                ctx.getBeanFactory().registerSingleton("runParameters", runParameters);
                ctx.getBeanFactory().registerSingleton("modelOption", new PipelineConfig.ModelOption(inv.model()));
            }
        });
        try (ConfigurableApplicationContext ctx = app.run()) {
            if (inv.command().equals("plan")) return ctx.getBean(io.vlmbatch.cli.PlanCommand.class).execute(inv);
            if (inv.command().equals("retry")) return ctx.getBean(io.vlmbatch.cli.RetryCommand.class).execute(inv);
            return ctx.getBean(Commands.class).execute(inv);
        } catch (Exception e) {
            System.err.println("error: " + Errors.rootMessage(e));
            return EXIT_FAILED;
        }
    }

    /** Path variables are checked by the loader; here, that every {{ params.x }} has its --param x=... */
    private static void checkRendering(JobDefinition def, RunParameters params) {
        Map<String, String> paths = new java.util.LinkedHashMap<>();
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
