package io.vlmbatch.run;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.config.BatchConfig;
import io.vlmbatch.config.DatabaseConfig;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.store.RunStore;
import io.vlmbatch.testsupport.TestPostgres;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.batch.core.BatchStatus;
import org.springframework.batch.core.job.Job;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.job.builder.JobBuilder;
import org.springframework.batch.core.job.parameters.JobParameters;
import org.springframework.batch.core.launch.JobOperator;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.batch.core.step.builder.StepBuilder;
import org.springframework.batch.infrastructure.repeat.RepeatStatus;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;
import org.springframework.core.env.MapPropertySource;
import org.springframework.transaction.PlatformTransactionManager;

/**
 * Several runs started at the same moment (several jobs due on one cron tick, plus two dates of one job)
 * through RunLifecycle on a real PostgreSQL: every one starts and completes; none fails on the job
 * repository's transactions (serialization failures when instances were created SERIALIZABLE).
 */
class ConcurrentStartsTest {
    private static final int RUNS = 8;

    @TempDir
    static Path tmp;
    static TestPostgres pg;
    static AnnotationConfigApplicationContext ctx;

    @BeforeAll
    static void context() throws Exception {
        pg = TestPostgres.start(tmp.resolve("pg"));
        ctx = new AnnotationConfigApplicationContext();
        ctx.getEnvironment().getPropertySources().addFirst(new MapPropertySource("test", Map.of(
                "spring.datasource.url", pg.jdbcUrl(), "spring.datasource.username", pg.user(), "spring.datasource.password", pg.password())));
        ctx.register(DatabaseConfig.class, RunConfig.class, BatchConfig.class);
        ctx.refresh();
    }

    @AfterAll
    static void close() {
        if (ctx != null) ctx.close();
        if (pg != null) pg.close();
    }

    @Test
    void runsStartedAtOnceAllComplete() throws Exception {
        RunLifecycle lifecycle = new RunLifecycle(ctx.getBean(JobRepository.class), ctx.getBean(JobOperator.class),
                ctx.getBean(RunStore.class), ctx.getBean(RunOwnership.class));
        CyclicBarrier together = new CyclicBarrier(RUNS);
        List<Future<JobExecution>> runs = new ArrayList<>();
        try (ExecutorService threads = Executors.newFixedThreadPool(RUNS)) {
            for (int i = 0; i < RUNS; i++) {
                // six jobs on one tick, and job-0 for two more dates
                String name = "job-" + (i < 6 ? i : 0);
                LocalDate date = LocalDate.of(2026, 4, 1).plusDays(i < 6 ? 0 : i - 5);
                Job job = trivialJob(name);
                JobParameters jp = RunKeys.jobParameters(new RunParameters(date, Map.of()));
                runs.add(threads.submit(() -> {
                    together.await();
                    RunPlan plan = lifecycle.prepare(name, jp, RunLifecycle.Intent.START_OR_RESUME, false);
                    return lifecycle.execute(plan, job, jp);
                }));
            }
        }
        for (Future<JobExecution> r : runs) {
            JobExecution e = r.get();
            assertThat(e.getStatus()).as(e.getJobInstance().getJobName() + " " + e.getAllFailureExceptions()).isEqualTo(BatchStatus.COMPLETED);
        }
        assertThat(ctx.getBean(RunStore.class).list(null, 100)).filteredOn(r -> r.jobName().startsWith("job-")).hasSize(RUNS);
    }

    @Test
    void takingARunOverIsACompareAndSetOnItsOwner() {
        RunStore runs = ctx.getBean(RunStore.class);
        runs.ensure(9_000_001L, "cas", LocalDate.of(2026, 4, 1), "");
        runs.claim(9_000_001L, "host-b", 4242);
        RunStore.Owner seen = runs.owner(9_000_001L).orElseThrow();
        assertThat(seen.host()).isEqualTo("host-b");
        assertThat(seen.heartbeatAge()).isNotNull();
        assertThat(runs.takeOver(9_000_001L, seen, "host-a", 1)).as("first taker").isTrue();
        assertThat(runs.takeOver(9_000_001L, seen, "host-c", 2)).as("second taker, same expectation").isFalse();
        assertThat(runs.owner(9_000_001L).orElseThrow().host()).isEqualTo("host-a");
    }

    private static Job trivialJob(String name) {
        JobRepository repository = ctx.getBean(JobRepository.class);
        return new JobBuilder(name, repository)
                .listener(new RunOwnerListener(ctx.getBean(RunStore.class), ctx.getBean(RunOwnership.class), ctx.getBean(Heartbeat.class)))
                .start(new StepBuilder("work", repository)
                        .tasklet((contribution, chunk) -> RepeatStatus.FINISHED, ctx.getBean(PlatformTransactionManager.class))
                        .build())
                .build();
    }
}
