package io.vlmbatch.db;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.config.BatchConfig;
import io.vlmbatch.config.DatabaseConfig;
import io.vlmbatch.testsupport.TestPostgres;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import javax.sql.DataSource;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.batch.core.BatchStatus;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.job.JobInstance;
import org.springframework.batch.core.job.parameters.JobParameters;
import org.springframework.batch.core.job.parameters.JobParametersBuilder;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.batch.infrastructure.item.ExecutionContext;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.MapPropertySource;
import org.springframework.core.io.ClassPathResource;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.datasource.DriverManagerDataSource;
import org.springframework.jdbc.datasource.init.ResourceDatabasePopulator;
import org.springframework.jdbc.support.JdbcTransactionManager;
import org.springframework.transaction.PlatformTransactionManager;

/**
 * Schema migrations on a real (embedded) PostgreSQL: a database made by release 1, with its rows, upgraded
 * in place by the new version's database configuration; an empty one migrated from scratch; both ending
 * with the same schema. Each test works in a database of its own on one server.
 */
class SchemaMigrationsTest {
    @TempDir
    static Path tmp;
    static TestPostgres pg;
    static final AtomicInteger databases = new AtomicInteger();

    @BeforeAll
    static void server() throws Exception {
        pg = TestPostgres.start(tmp.resolve("pg"));
    }

    @AfterAll
    static void stop() {
        pg.close();
    }

    /** A new empty database; returns its JDBC URL. */
    static String newDatabase() {
        String name = "migrations_" + databases.incrementAndGet();
        new JdbcTemplate(new DriverManagerDataSource(pg.jdbcUrl(), pg.user(), pg.password())).execute("CREATE DATABASE " + name);
        return pg.jdbcUrl().replaceFirst("/postgres$", "/" + name);
    }

    static DriverManagerDataSource dataSource(String url) {
        return new DriverManagerDataSource(url, pg.user(), pg.password());
    }

    /** What release 1 applied at start: Spring Batch's DDL from its jar, then sql/vlm-batch.sql and sql/vlm-schedule.sql. */
    static void applyRelease1Schema(DataSource ds) {
        new ResourceDatabasePopulator(
                new ClassPathResource("org/springframework/batch/core/schema-postgresql.sql"),
                new ClassPathResource("legacy-schema/release-1.sql")).execute(ds);
    }

    /** The new version starting on the database: DatabaseConfig (migrations in its dataSource bean) plus the Batch repository. */
    static AnnotationConfigApplicationContext startNewVersion(String url) {
        AnnotationConfigApplicationContext ctx = new AnnotationConfigApplicationContext();
        ctx.getEnvironment().getPropertySources().addFirst(new MapPropertySource("test", Map.of(
                "spring.datasource.url", url, "spring.datasource.username", pg.user(), "spring.datasource.password", pg.password())));
        ctx.register(DatabaseConfig.class, BatchConfig.class);
        ctx.refresh();
        return ctx;
    }

    record Release1Rows(long runId, long executionId) {}

    /** A finished run of release 1 as its code wrote it: Batch job instance + execution, the run, items, results, schedule rows. */
    static Release1Rows writeRelease1Rows(DriverManagerDataSource ds) {
        long runId;
        long executionId;
        try (AnnotationConfigApplicationContext ctx = new AnnotationConfigApplicationContext()) {
            ctx.registerBean(DataSource.class, () -> ds);
            ctx.registerBean("transactionManager", PlatformTransactionManager.class, () -> new JdbcTransactionManager(ds));
            ctx.register(BatchConfig.class);
            ctx.refresh();
            JobRepository repo = ctx.getBean(JobRepository.class);
            JobParameters params = new JobParametersBuilder().addLocalDate("date", LocalDate.of(2026, 12, 3)).toJobParameters();
            JobInstance instance = repo.createJobInstance("samples", params);
            JobExecution execution = repo.createJobExecution(instance, params, new ExecutionContext());
            execution.setStartTime(LocalDateTime.of(2026, 12, 3, 2, 0));
            execution.setStatus(BatchStatus.COMPLETED);
            execution.setEndTime(LocalDateTime.of(2026, 12, 3, 2, 5));
            repo.update(execution);
            runId = instance.getInstanceId();
            executionId = execution.getId();
        }
        JdbcTemplate jdbc = new JdbcTemplate(ds);
        jdbc.update("INSERT INTO vlm_run (run_id, job_name, logical_date, params, discovered) VALUES (?, 'samples', '2026-12-03', '', TRUE)", runId);
        jdbc.update("""
                INSERT INTO vlm_work_item (run_id, item_key, uri, metadata, status, error, width, height) VALUES
                  (?, 'a.jpg', 'file:///data/a.jpg', '{"size": 1200, "title": "quote \\" and ünïcode"}', 'done', NULL, 640, 480),
                  (?, 'b.png', 'file:///data/b.png', '{}', 'failed', 'cannot decode: truncated', NULL, NULL),
                  (?, 'c.webp', 'file:///data/c.webp', '{}', 'pending', NULL, NULL, NULL)""", runId, runId, runId);
        jdbc.update("""
                INSERT INTO vlm_result (work_item_id, task, status, answer, error, model, prompt_tokens, completion_tokens, latency_ms, attempts)
                SELECT id, 'caption', 'done', 'A red bicycle; "leaning" on a wall.', NULL, 'glm-4v-9b', 1620, 12, 830, 1
                FROM vlm_work_item WHERE item_key = 'a.jpg'""");
        jdbc.update("INSERT INTO vlm_schedule_job (job_name, registered_at) VALUES ('samples', '2026-11-30T00:00:00Z')");
        jdbc.update("""
                INSERT INTO vlm_schedule_run (job_name, interval_start, interval_end, logical_date, params, trigger, state, attempt, queued_at, started_at, ended_at)
                VALUES ('samples', '2026-12-03T02:00:00Z', '2026-12-04T02:00:00Z', '2026-12-03', '', 'schedule', 'success', 1,
                        '2026-12-04T02:00:00Z', '2026-12-04T02:00:01Z', '2026-12-04T02:05:00Z')""");
        return new Release1Rows(runId, executionId);
    }

    /** Every row and value kept; columns that later versions add are there, empty. */
    static void assertKept(List<Map<String, Object>> before, List<Map<String, Object>> after) {
        assertThat(after).hasSameSizeAs(before);
        for (int i = 0; i < before.size(); i++) {
            Map<String, Object> added = new java.util.HashMap<>(after.get(i));
            before.get(i).forEach((column, value) -> assertThat(added.remove(column)).as(column).isEqualTo(value));
            assertThat(added.values()).as("columns added by later versions").allMatch(java.util.Objects::isNull);
        }
    }

    static List<Map<String, Object>> rows(JdbcTemplate jdbc) {
        List<Map<String, Object>> all = new ArrayList<>();
        all.addAll(jdbc.queryForList("SELECT * FROM vlm_run ORDER BY run_id"));
        all.addAll(jdbc.queryForList("SELECT id, run_id, item_key, uri, metadata::text, status, error, width, height, updated_at FROM vlm_work_item ORDER BY id"));
        all.addAll(jdbc.queryForList("SELECT * FROM vlm_result ORDER BY work_item_id, task"));
        all.addAll(jdbc.queryForList("SELECT * FROM vlm_schedule_job ORDER BY job_name"));
        all.addAll(jdbc.queryForList("SELECT * FROM vlm_schedule_run ORDER BY job_name, interval_start"));
        all.addAll(jdbc.queryForList("SELECT * FROM batch_job_instance ORDER BY job_instance_id"));
        all.addAll(jdbc.queryForList("SELECT * FROM batch_job_execution ORDER BY job_execution_id"));
        all.addAll(jdbc.queryForList("SELECT * FROM batch_job_execution_params ORDER BY job_execution_id, parameter_name"));
        return all;
    }

    /** Tables, columns, constraints, indexes and sequences of the database, history table left out. */
    static List<String> schema(JdbcTemplate jdbc) {
        List<String> s = new ArrayList<>();
        s.addAll(jdbc.queryForList("""
                SELECT table_name || '.' || column_name || ' ' || data_type || ' null=' || is_nullable || ' default=' || coalesce(column_default, '')
                FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'flyway_schema_history'
                ORDER BY table_name, column_name""", String.class));
        s.addAll(jdbc.queryForList("""
                SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
                WHERE connamespace = 'public'::regnamespace AND conrelid <> 'flyway_schema_history'::regclass ORDER BY 1""", String.class));
        s.addAll(jdbc.queryForList("""
                SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'flyway_schema_history' ORDER BY indexname""", String.class));
        s.addAll(jdbc.queryForList("SELECT 'sequence ' || sequencename FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1", String.class));
        return s;
    }

    static List<String> history(JdbcTemplate jdbc) {
        return jdbc.queryForList("""
                SELECT version || ' ' || type || ' ' || description || ' ' || success FROM flyway_schema_history ORDER BY installed_rank""",
                String.class);
    }

    /** The versions in db/migration after 1, as their history lines will read once applied. */
    static List<String> laterVersionsApplied() throws Exception {
        var resolver = new org.springframework.core.io.support.PathMatchingResourcePatternResolver();
        List<String> lines = new ArrayList<>();
        List<String> names = new ArrayList<>();
        for (var r : resolver.getResources("classpath*:db/migration/V*.sql")) names.add(r.getFilename());
        names.sort(java.util.Comparator.comparing(n -> org.flywaydb.core.api.MigrationVersion.fromVersion(n.substring(1, n.indexOf("__")).replace('_', '.'))));
        for (String n : names) {
            String version = n.substring(1, n.indexOf("__")).replace('_', '.');
            String description = n.substring(n.indexOf("__") + 2, n.length() - ".sql".length()).replace('_', ' ');
            lines.add(version + " SQL " + description + " true");
        }
        return lines;
    }

    @Test
    void release1DatabaseUpgradesInPlaceKeepingItsRowsAndASecondStartChangesNothing() throws Exception {
        String url = newDatabase();
        DriverManagerDataSource ds = dataSource(url);
        applyRelease1Schema(ds);
        Release1Rows written = writeRelease1Rows(ds);
        JdbcTemplate jdbc = new JdbcTemplate(ds);
        List<Map<String, Object>> before = rows(jdbc);
        assertThat(before).hasSizeGreaterThan(8);

        try (AnnotationConfigApplicationContext ctx = startNewVersion(url)) {
            // The new version reads release 1's Batch rows through Spring Batch itself.
            JobRepository repo = ctx.getBean(JobRepository.class);
            JobExecution execution = repo.getJobExecution(written.executionId());
            assertThat(execution.getStatus()).isEqualTo(BatchStatus.COMPLETED);
            assertThat(execution.getJobInstance().getInstanceId()).isEqualTo(written.runId());
            assertThat(execution.getJobParameters().getLocalDate("date")).isEqualTo(LocalDate.of(2026, 12, 3));
        }

        assertKept(before, rows(jdbc));
        assertThat(jdbc.queryForObject("SELECT answer FROM vlm_result", String.class)).isEqualTo("A red bicycle; \"leaning\" on a wall.");
        assertThat(jdbc.queryForObject("SELECT metadata->>'title' FROM vlm_work_item WHERE item_key = 'a.jpg'", String.class))
                .isEqualTo("quote \" and ünïcode");
        List<String> expectedHistory = new ArrayList<>(List.of("1 BASELINE release 1 schema, found in place true"));
        expectedHistory.addAll(laterVersionsApplied());
        List<String> history = history(jdbc);
        assertThat(history).isEqualTo(expectedHistory);

        List<String> schema = schema(jdbc);
        List<Map<String, Object>> after = rows(jdbc);
        try (AnnotationConfigApplicationContext again = startNewVersion(url)) {
            assertThat(again.getBean(JobRepository.class).getJobInstance(written.runId())).isNotNull();
        }
        assertThat(history(jdbc)).isEqualTo(history);
        assertThat(schema(jdbc)).isEqualTo(schema);
        assertThat(rows(jdbc)).isEqualTo(after);
    }

    @Test
    void emptyDatabaseGetsEveryVersionAndTheSameSchemaAsAnUpgradedRelease1Database() throws Exception {
        String fresh = newDatabase();
        startNewVersion(fresh).close();
        JdbcTemplate jdbc = new JdbcTemplate(dataSource(fresh));
        List<String> expectedHistory = new ArrayList<>(List.of("1 JDBC release 1 schema true"));
        expectedHistory.addAll(laterVersionsApplied());
        assertThat(history(jdbc)).isEqualTo(expectedHistory);
        for (String table : Release1Schema.TABLES) {
            assertThat(jdbc.queryForObject("SELECT to_regclass(?) IS NOT NULL", Boolean.class, table)).as(table).isTrue();
        }

        String upgraded = newDatabase();
        applyRelease1Schema(dataSource(upgraded));
        SchemaMigrations.migrate(dataSource(upgraded));
        assertThat(schema(jdbc)).isNotEmpty().isEqualTo(schema(new JdbcTemplate(dataSource(upgraded))));
    }

    @Test
    void release1DatabaseOnlyEverUsedByRunGetsTheSchedulerTablesBeforeItsBaseline() {
        // Release 1 created the scheduler's tables only when `serve` started.
        String url = newDatabase();
        DriverManagerDataSource ds = dataSource(url);
        applyRelease1Schema(ds);
        Release1Rows written = writeRelease1Rows(ds);
        JdbcTemplate jdbc = new JdbcTemplate(ds);
        jdbc.execute("DROP TABLE vlm_schedule_run, vlm_schedule_job");
        long items = jdbc.queryForObject("SELECT count(*) FROM vlm_work_item WHERE run_id = ?", Long.class, written.runId());

        SchemaMigrations.migrate(ds);

        assertThat(jdbc.queryForObject("SELECT count(*) FROM vlm_schedule_run", Long.class)).isZero();
        assertThat(jdbc.queryForObject("SELECT count(*) FROM vlm_work_item WHERE run_id = ?", Long.class, written.runId())).isEqualTo(items);
        assertThat(history(jdbc).getFirst()).isEqualTo("1 BASELINE release 1 schema, found in place true");
    }

    @Test
    void twoProcessesStartingTogetherOnAnEmptyDatabaseApplyEachVersionOnce() throws Exception {
        String url = newDatabase();
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Callable<Void> start = () -> {
                SchemaMigrations.migrate(dataSource(url));
                return null;
            };
            List<Future<Void>> both = pool.invokeAll(List.of(start, start));
            for (Future<Void> f : both) f.get();
        } finally {
            pool.shutdown();
        }
        List<String> expectedHistory = new ArrayList<>(List.of("1 JDBC release 1 schema true"));
        expectedHistory.addAll(laterVersionsApplied());
        assertThat(history(new JdbcTemplate(dataSource(url)))).isEqualTo(expectedHistory);
    }

    @Test
    void versionOneRunsTheSpringBatchDdlThatRelease1Ran() throws Exception {
        // Spring Batch 6.0's PostgreSQL DDL, as release 1 applied it. Should an upgrade of spring-batch-core
        // change it, version 1 must not change with it: pin version 1 to this DDL and apply Spring Batch's
        // migration script in a new version instead.
        byte[] ddl = new ClassPathResource(Release1Schema.SPRING_BATCH_DDL).getInputStream().readAllBytes();
        String sha256 = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(
                new String(ddl, StandardCharsets.UTF_8).replace("\r\n", "\n").getBytes(StandardCharsets.UTF_8)));
        assertThat(sha256).isEqualTo(RELEASE_1_SPRING_BATCH_DDL_SHA256);
    }

    private static final String RELEASE_1_SPRING_BATCH_DDL_SHA256 =
            "f2ac75cae966e4eb1cd97ee6b11f130495b7109153754a7983befb87614d6e38";
}
