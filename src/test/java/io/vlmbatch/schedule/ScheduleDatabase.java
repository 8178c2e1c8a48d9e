package io.vlmbatch.schedule;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.db.SchemaMigrations;
import io.vlmbatch.testsupport.TestPostgres;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.datasource.DriverManagerDataSource;

/**
 * The scheduler tests' fixture (a static @RegisterExtension field): a real (embedded) PostgreSQL with the
 * current schema for the test class, the schedule tables emptied before each test, and job folders for
 * the catalogs the tests load.
 */
final class ScheduleDatabase implements BeforeAllCallback, AfterAllCallback, BeforeEachCallback {
    private Path dir;
    private TestPostgres pg;
    DriverManagerDataSource ds;
    JdbcTemplate jdbc;

    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        dir = Files.createTempDirectory("vlm-schedule-test");
        pg = TestPostgres.start(dir.resolve("pg"));
        ds = new DriverManagerDataSource(pg.jdbcUrl(), pg.user(), pg.password());
        SchemaMigrations.migrate(ds);
        jdbc = new JdbcTemplate(ds);
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        jdbc.update("TRUNCATE vlm_schedule_run, vlm_schedule_job");
    }

    @Override
    public void afterAll(ExtensionContext context) throws Exception {
        if (pg != null) pg.close();
        try (var files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    /**
     * A catalog of one job over images/{{ ds }} (a folder with none of those dates) asking a closed port;
     * scheduleLines (YAML lines, may be empty) say when and how it runs. It must load without errors.
     */
    JobCatalog catalog(String name, String scheduleLines) throws Exception {
        Path jobs = Files.createTempDirectory(dir, "jobs");
        Files.createDirectories(jobs.resolve("images"));
        Files.writeString(jobs.resolve(name + ".yaml"), """
                name: %s
                %s
                source: { folder: "images/{{ ds }}" }
                tasks:
                  - { name: caption, template: describe }
                inference: { base_url: "http://127.0.0.1:9" }
                """.formatted(name, scheduleLines));
        JobCatalog c = JobCatalog.load(jobs);
        assertThat(c.entries()).allSatisfy(e -> assertThat(e.error()).isNull());
        return c;
    }
}
