package io.vlmbatch.web;

import io.micrometer.core.instrument.MeterRegistry;
import io.vlmbatch.config.AppPaths;
import io.vlmbatch.config.PipelineConfig;
import io.vlmbatch.config.PipelineJobs;
import io.vlmbatch.image.ResizeSpec;
import io.vlmbatch.inference.EmbeddedInferenceServer;
import io.vlmbatch.inference.InferenceService;
import io.vlmbatch.inference.InferenceSpec;
import io.vlmbatch.run.RunInference;
import io.vlmbatch.run.RunLifecycle;
import io.vlmbatch.schedule.BatchRunLauncher;
import io.vlmbatch.schedule.JobCatalog;
import io.vlmbatch.schedule.ScheduleStore;
import io.vlmbatch.schedule.Scheduler;
import io.vlmbatch.store.WorkItemStore;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import javax.sql.DataSource;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.batch.core.launch.JobOperator;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.context.ApplicationListener;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.PropertySource;
import org.springframework.core.env.Environment;
import org.springframework.jdbc.core.JdbcTemplate;

/**
 * What `serve` adds to the CLI's context: the scheduler, the REST API, the UI (static files), metrics,
 * health and login. Only this configuration turns on Spring Boot's auto-configuration (web server,
 * MVC, Actuator, Security); the pipeline's beans stay declared by hand. Defaults: serve.properties.
 */
@Configuration(proxyBeanMethods = false)
@EnableAutoConfiguration
@PropertySource("classpath:serve.properties")
@Import({PipelineConfig.class, SecurityConfig.class, JobsController.class, RunsController.class, PlaygroundController.class, ApiErrors.class})
public class ServeConfig {

    @Bean
    ScheduleStore scheduleStore(DataSource dataSource) {
        return new ScheduleStore(dataSource); // its tables come with the schema migrations (DatabaseConfig)
    }

    @Bean
    JobCatalog jobCatalog(Environment env) {
        return JobCatalog.load(Path.of(env.getProperty("vlm.jobs-dir", "jobs")).toAbsolutePath().normalize());
    }

    private static Path modelDir(Environment env) {
        String m = env.getProperty("vlm.model-dir");
        return m == null || m.isBlank() ? null : Path.of(m).toAbsolutePath();
    }

    @Bean
    BatchRunLauncher batchRunLauncher(RunLifecycle lifecycle, PipelineJobs jobs, RunInference inference, JobRepository repository,
                                      JobOperator operator, io.vlmbatch.ledger.Attempts attempts) {
        return new BatchRunLauncher(lifecycle, jobs, inference, repository, operator,
                new io.vlmbatch.ledger.Retry(repository, lifecycle, attempts));
    }

    @Bean(destroyMethod = "close")
    Scheduler scheduler(JobCatalog catalog, ScheduleStore store, BatchRunLauncher launcher, Environment env) {
        return new Scheduler(catalog, store, launcher, Clock.systemUTC(),
                Duration.ofSeconds(env.getProperty("vlm.scheduler.orphan-timeout-seconds", Long.class, 120L)));
    }

    /** The scheduler starts ticking once the web server is up (vlm.scheduler.enabled=false: API and UI only). */
    @Bean
    ApplicationListener<ApplicationReadyEvent> startScheduler(Scheduler scheduler, Environment env) {
        return e -> {
            if (env.getProperty("vlm.scheduler.enabled", Boolean.class, true)) {
                scheduler.start(Duration.ofMillis(env.getProperty("vlm.scheduler.tick-ms", Long.class, 10_000L)));
            }
        };
    }

    @Bean
    RunQueries runQueries(JdbcTemplate jdbc, WorkItemStore items) {
        return new RunQueries(jdbc, items);
    }

    /** vlm.plan.keep-seconds: how long a job page's plan is answered again before the source is listed anew. */
    @Bean
    JobPlans jobPlans(RunInference inference, io.vlmbatch.ledger.LedgerStore ledger, Environment env) {
        return new JobPlans(inference, ledger, Duration.ofSeconds(env.getProperty("vlm.plan.keep-seconds", Long.class, 60L)),
                Clock.systemUTC());
    }

    @Bean(destroyMethod = "close")
    Thumbnails thumbnails(JobCatalog catalog) {
        return new Thumbnails(catalog);
    }

    @Bean
    PlaygroundSessions playgroundSessions() {
        return new PlaygroundSessions(ResizeSpec.defaults());
    }

    /** One embedded vlmserve for every run and the playground of this process, started on first use. */
    @Bean(destroyMethod = "close")
    EmbeddedInferenceServer embeddedInferenceServer(Environment env, AppPaths paths) {
        return new EmbeddedInferenceServer(paths.home(), modelDir(env), paths.logs());
    }

    /** The playground's endpoint: --inference-url, else the embedded server. */
    @Bean(destroyMethod = "close")
    InferenceService playgroundInference(Environment env, EmbeddedInferenceServer embedded) {
        String url = env.getProperty("vlm.playground.base-url");
        InferenceSpec spec = new InferenceSpec(url == null || url.isBlank() ? InferenceSpec.EMBEDDED : url, null, 8,
                Duration.ofMinutes(10), 2, Duration.ofMillis(500), null);
        return new InferenceService(spec, embedded, false);
    }

    @Bean(destroyMethod = "close")
    PipelineMetrics pipelineMetrics(JdbcTemplate jdbc, MeterRegistry meters, Scheduler scheduler, BatchRunLauncher launcher) {
        PipelineMetrics m = new PipelineMetrics(jdbc, meters, scheduler, launcher);
        m.start(Duration.ofSeconds(5));
        return m;
    }

    /** Health "inference": the playground's endpoint answers /v1/models (an embedded one not yet started is fine). */
    @Bean
    HealthIndicator inferenceHealthIndicator(@Qualifier("playgroundInference") InferenceService inference) {
        return () -> {
            String url = inference.knownUrl();
            if (url == null) return Health.up().withDetail("endpoint", "embedded (starts on first use)").build();
            return (inference.healthy() ? Health.up() : Health.down()).withDetail("endpoint", url).build();
        };
    }
}
