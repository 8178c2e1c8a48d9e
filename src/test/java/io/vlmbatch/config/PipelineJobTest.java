package io.vlmbatch.config;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.bench.InstantOpenAiEndpoint;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.JobFileLoader;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.pipeline.JobFiles;
import io.vlmbatch.run.RunKeys;
import io.vlmbatch.run.RunLifecycle;
import io.vlmbatch.run.RunPlan;
import io.vlmbatch.store.RunStore;
import io.vlmbatch.testsupport.ImageFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.batch.core.BatchStatus;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.job.JobInstance;
import org.springframework.batch.core.job.parameters.JobParameters;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.batch.core.step.Step;
import org.springframework.batch.core.step.StepExecution;
import org.springframework.batch.infrastructure.item.ExecutionContext;
import org.springframework.batch.test.JobOperatorTestUtils;
import org.springframework.batch.test.context.SpringBatchTest;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.test.context.junit.jupiter.SpringJUnitConfig;

/**
 * The pipeline's job configuration in-process, with Spring Batch's test support: the whole job and the
 * discover step alone, launched with JobParameters only (job.file, date), against the embedded
 * PostgreSQL and a real OpenAI-compatible HTTP endpoint in this JVM.
 */
@SpringBatchTest
@SpringJUnitConfig(classes = {CoreConfig.class, PipelineConfig.class})
class PipelineJobTest {
    private static final Path WORK = Path.of("target", "pipeline-job-test").toAbsolutePath();
    private static final int IMAGES = 12;
    private static InstantOpenAiEndpoint endpoint;

    @Autowired
    JobOperatorTestUtils testUtils;
    @Autowired
    PipelineJobs jobs;
    @Autowired
    JobRepository repository;
    @Autowired
    RunStore runs;
    @Autowired
    JdbcTemplate jdbc;
    @Autowired
    RunLifecycle lifecycle;
    @Autowired
    @Qualifier("discover")
    Step discover;

    @BeforeAll
    static void setUp() throws IOException {
        if (Files.exists(WORK)) {
            try (Stream<Path> all = Files.walk(WORK)) {
                all.sorted(Comparator.reverseOrder()).map(Path::toFile).forEach(java.io.File::delete);
            }
        }
        ImageFiles.writeJpegs(WORK.resolve("images"), IMAGES, 64, 48);
        System.setProperty("vlm.data.dir", WORK.resolve("data").toString());
        endpoint = new InstantOpenAiEndpoint();
    }

    @AfterAll
    static void tearDown() {
        endpoint.close();
    }

    /** reuse off: the tests list the same images, and each must ask the endpoint itself. */
    private static Path jobFile(String name, String csv) throws IOException {
        return JobFiles.job(WORK, name, JobFiles.CAPTION_AND_KIND, csv, "base_url: \"%s\", concurrency: 4, retries: 0, timeout_s: 10"
                .formatted(endpoint.baseUrl()), "chunk_size: 3, partitions: 2, reuse: false");
    }

    private static JobParameters launch(Path file, LocalDate date) {
        JobDefinition def = JobFileLoader.load(file);
        return RunKeys.launchParameters(def, List.of(), new RunParameters(date, Map.of("shard", "a")));
    }

    private long count(String sql, Object... args) {
        Long n = jdbc.queryForObject(sql, Long.class, args);
        return n == null ? 0 : n;
    }

    private static List<String> csvRows(Path csv) throws IOException {
        return Files.readAllLines(csv).stream().filter(l -> !l.isBlank()).toList();
    }

    @Test
    void wholeJobAnswersEveryImageAndExportsItsCsv() throws Exception {
        Path file = jobFile("whole", "out/{{ ds }}-{{ params.shard }}.csv");
        long before = endpoint.requests.get();
        testUtils.setJob(jobs.jobFor("whole"));

        JobExecution execution = testUtils.startJob(launch(file, LocalDate.of(2026, 3, 1)));

        assertThat(execution.getStatus()).as(execution.getAllFailureExceptions().toString()).isEqualTo(BatchStatus.COMPLETED);
        assertThat(execution.getJobInstance().getJobName()).isEqualTo("whole");
        long runId = execution.getJobInstance().getInstanceId();
        assertThat(count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId)).isEqualTo(IMAGES);
        assertThat(count("""
                SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                WHERE w.run_id = ? AND r.status = 'done'""", runId)).isEqualTo(IMAGES * 2);
        // the classification's answer is the endpoint's first choice, stored and exported as given
        assertThat(count("""
                SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                WHERE w.run_id = ? AND r.task = 'kind' AND r.answer = 'photo'""", runId)).isEqualTo(IMAGES);
        assertThat(endpoint.requests.get() - before).isEqualTo(IMAGES * 2);
        // the path variables were rendered from the run's date and params
        List<String> rows = csvRows(WORK.resolve("out/2026-03-01-a.csv"));
        assertThat(rows).hasSize(IMAGES + 1);
        assertThat(rows.getFirst()).contains("caption").contains("kind");
        assertThat(rows.subList(1, rows.size())).allSatisfy(r -> assertThat(r).contains("photo").contains(".jpg"));
    }

    @Test
    void discoverStepAloneListsTheFolder() throws Exception {
        Path file = jobFile("discoveronly", "out/discoveronly.csv");
        JobParameters jp = launch(file, LocalDate.of(2026, 3, 2));
        JobInstance instance = repository.createJobInstance("discoveronly", jp);
        JobExecution job = repository.createJobExecution(instance, jp, new ExecutionContext());
        runs.ensure(instance.getInstanceId(), "discoveronly", LocalDate.of(2026, 3, 2), "shard=a");
        StepExecution step = repository.createStepExecution("discover", job);

        discover.execute(step);

        assertThat(step.getStatus()).as(step.getFailureExceptions().toString()).isEqualTo(BatchStatus.COMPLETED);
        assertThat(step.getWriteCount()).isEqualTo(IMAGES);
        assertThat(count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'pending'", instance.getInstanceId()))
                .isEqualTo(IMAGES);
        assertThat(runs.discovered(instance.getInstanceId())).isTrue();
    }

    @Test
    void restartWithTheSameParametersResumesAtTheFailedStep() throws Exception {
        // output.csv's folder is blocked by a file: the export step fails after every image was answered
        Files.createDirectories(WORK.resolve("blocked"));
        Files.writeString(WORK.resolve("blocked/out"), "a file where the CSV's folder should be");
        Path file = jobFile("resumed", "blocked/out/resumed.csv");
        JobParameters jp = launch(file, LocalDate.of(2026, 3, 3));
        testUtils.setJob(jobs.jobFor("resumed"));
        long before = endpoint.requests.get();

        JobExecution first = testUtils.startJob(jp);

        assertThat(first.getStatus()).isEqualTo(BatchStatus.FAILED);
        long runId = first.getJobInstance().getInstanceId();
        assertThat(count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId)).isEqualTo(IMAGES);
        long asked = endpoint.requests.get() - before;
        assertThat(asked).isEqualTo(IMAGES * 2);

        // The restart reads the job file again: the fixed output path applies to the resumed run.
        jobFile("resumed", "out/resumed.csv");
        JobExecution second = testUtils.startJob(RunKeys.relaunchParameters(first.getJobParameters(), file));

        assertThat(second.getStatus()).as(second.getAllFailureExceptions().toString()).isEqualTo(BatchStatus.COMPLETED);
        assertThat(second.getJobInstance().getInstanceId()).isEqualTo(runId);
        assertThat(endpoint.requests.get() - before).as("nothing asked again").isEqualTo(asked);
        assertThat(second.getStepExecutions()).extracting(StepExecution::getStepName).containsExactly("export");
        assertThat(csvRows(WORK.resolve("out/resumed.csv"))).hasSize(IMAGES + 1);
    }

    @Test
    void aRunLeftByAnEarlierReleaseRestartsWithTheJobFileGiven() throws Exception {
        Path file = jobFile("oldrelease", "out/oldrelease.csv");
        LocalDate date = LocalDate.of(2026, 3, 4);
        // what earlier releases launched with: the identifying parameters only, no job.file
        JobParameters old = RunKeys.jobParameters(new RunParameters(date, Map.of("shard", "a")));
        JobInstance instance = repository.createJobInstance("oldrelease", old);
        JobExecution failed = repository.createJobExecution(instance, old, new ExecutionContext());
        failed.setStartTime(LocalDateTime.now());
        failed.setStatus(BatchStatus.FAILED);
        failed.setEndTime(LocalDateTime.now());
        repository.update(failed);

        RunPlan plan = lifecycle.prepare("oldrelease", old, RunLifecycle.Intent.RESUME, false);
        assertThat(plan.action()).isEqualTo(RunPlan.Action.RESTART);
        JobExecution resumed = lifecycle.execute(plan, jobs.jobFor("oldrelease"),
                RunKeys.relaunchParameters(plan.previous().getJobParameters(), file));

        assertThat(resumed.getStatus()).as(resumed.getAllFailureExceptions().toString()).isEqualTo(BatchStatus.COMPLETED);
        assertThat(resumed.getJobInstance().getInstanceId()).isEqualTo(instance.getInstanceId());
        assertThat(count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", instance.getInstanceId()))
                .isEqualTo(IMAGES);
        assertThat(csvRows(WORK.resolve("out/oldrelease.csv"))).hasSize(IMAGES + 1);
    }
}
