package io.vlmbatch.web;

import static org.hamcrest.Matchers.containsString;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.get;
import static org.springframework.test.web.servlet.result.MockMvcResultMatchers.content;
import static org.springframework.test.web.servlet.result.MockMvcResultMatchers.jsonPath;
import static org.springframework.test.web.servlet.result.MockMvcResultMatchers.status;

import io.vlmbatch.config.DatabaseConfig;
import io.vlmbatch.schedule.JobCatalog;
import io.vlmbatch.store.WorkItemStore;
import io.vlmbatch.testsupport.TestPostgres;
import java.nio.file.Files;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.webmvc.test.autoconfigure.WebMvcTest;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.test.web.servlet.MockMvc;

/**
 * The run API as a web slice (MockMvc: no server, scheduler or login; WebSecurityTest covers login) over the real tables in an embedded
 * PostgreSQL: the typed run detail with its one-query counts, result filters, and hostile parameters.
 */
@WebMvcTest(properties = "spring.main.web-application-type=servlet") // application.properties says none: the CLI commands are not web
class RunsControllerTest {
    static TestPostgres pg;

    @Configuration(proxyBeanMethods = false)
    @Import({RunsController.class, ApiErrors.class, DatabaseConfig.class})
    static class Slice {
        @Bean
        RunQueries runQueries(JdbcTemplate jdbc, WorkItemStore items) {
            return new RunQueries(jdbc, items);
        }

        @Bean(destroyMethod = "close")
        Thumbnails thumbnails() throws Exception {
            return new Thumbnails(JobCatalog.load(Files.createTempDirectory("jobs")));
        }
    }

    @DynamicPropertySource
    static void database(DynamicPropertyRegistry registry) throws Exception {
        if (pg == null) pg = TestPostgres.start(Files.createTempDirectory("runs-api").resolve("pg"));
        registry.add("spring.datasource.url", pg::jdbcUrl);
        registry.add("spring.datasource.username", pg::user);
        registry.add("spring.datasource.password", pg::password);
    }

    @AfterAll
    static void stop() {
        if (pg != null) pg.close();
    }

    @Autowired
    MockMvc mvc;
    @Autowired
    JdbcTemplate jdbc;

    @BeforeEach
    void oneRun() {
        jdbc.update("TRUNCATE vlm_run CASCADE");
        jdbc.update("INSERT INTO vlm_run (run_id, job_name, logical_date, params, discovered) VALUES (7, 'gallery', '2026-05-01', '', true)");
        jdbc.update("""
                INSERT INTO vlm_work_item (id, run_id, item_key, uri, status, error) VALUES
                  (1, 7, 'a.jpg', 'file:///a.jpg', 'done', NULL), (2, 7, 'b.jpg', 'file:///b.jpg', 'done', NULL),
                  (3, 7, '100%_sure.jpg', 'file:///c.jpg', 'failed', 'not an image'), (4, 7, 'd.jpg', 'file:///d.jpg', 'pending', NULL)""");
        jdbc.update("INSERT INTO vlm_result (work_item_id, task, status, answer) VALUES (1, 'kind', 'done', 'photo'), (2, 'kind', 'done', 'chart')");
    }

    @Test
    void runDetailIsTypedWithCountsFromTheOneQuery() throws Exception {
        mvc.perform(get("/api/runs/7")).andExpect(status().isOk())
                .andExpect(jsonPath("$.job").value("gallery"))
                .andExpect(jsonPath("$.logicalDate").value("2026-05-01"))
                .andExpect(jsonPath("$.counts.done").value(2))
                .andExpect(jsonPath("$.counts.failed").value(1))
                .andExpect(jsonPath("$.counts.pending").value(1))
                .andExpect(jsonPath("$.counts.total").value(4))
                .andExpect(jsonPath("$.failures[0].itemKey").value("100%_sure.jpg"))
                .andExpect(jsonPath("$.failures[0].error").value("not an image"))
                .andExpect(jsonPath("$.tasks[0]").value("kind"))
                .andExpect(jsonPath("$.state").value("queued")) // no Batch execution, no schedule row
                .andExpect(jsonPath("$.imagesPerSecond").doesNotExist());
        mvc.perform(get("/api/runs/8")).andExpect(status().isNotFound()).andExpect(content().string(containsString("no run 8")));
    }

    @Test
    void resultsAreFilteredByStatusLabelAndText() throws Exception {
        mvc.perform(get("/api/runs/7/results").param("status", "done")).andExpect(status().isOk())
                .andExpect(jsonPath("$.total").value(2))
                .andExpect(jsonPath("$.items[0].answers.kind.answer").value("photo"));
        mvc.perform(get("/api/runs/7/results").param("task", "kind").param("label", "chart"))
                .andExpect(jsonPath("$.total").value(1)).andExpect(jsonPath("$.items[0].itemKey").value("b.jpg"));
        // LIKE wildcards in the search text are literal: '%' matches only the key that has one
        mvc.perform(get("/api/runs/7/results").param("q", "%_"))
                .andExpect(jsonPath("$.total").value(1)).andExpect(jsonPath("$.items[0].id").value(3));
        mvc.perform(get("/api/runs/7/results").param("page", "1").param("size", "3"))
                .andExpect(jsonPath("$.total").value(4)).andExpect(jsonPath("$.items.length()").value(1));
    }

    @Test
    void runDetailShowsTheLedgerCountsAndRetryAttempts() throws Exception {
        jdbc.update("UPDATE vlm_work_item SET reused = TRUE WHERE id = 1");
        jdbc.update("INSERT INTO vlm_run (run_id, job_name, logical_date, params, retry_of, attempt) VALUES (9, 'gallery', '2026-05-01', '', 7, 2)");
        mvc.perform(get("/api/runs/7")).andExpect(status().isOk())
                .andExpect(jsonPath("$.ledger.reused").value(1))
                .andExpect(jsonPath("$.ledger.asked").value(1))
                .andExpect(jsonPath("$.ledger.failed").value(1))
                .andExpect(jsonPath("$.ledger.attempts[0].attempt").value(2))
                .andExpect(jsonPath("$.ledger.attempts[0].attemptRunId").value(9));
    }

    @Test
    void anItemShowsItsAnswersAcrossAttemptsAndRunsWithTheSameBytes() throws Exception {
        jdbc.update("INSERT INTO vlm_run (run_id, job_name, logical_date, params) VALUES (5, 'other-job', '2026-04-30', '')");
        jdbc.update("""
                INSERT INTO vlm_work_item (id, run_id, item_key, uri, status, content_hash) VALUES
                  (50, 5, 'renamed.jpg', 'file:///renamed.jpg', 'done', 'h1'), (51, 5, 'x.jpg', 'file:///x.jpg', 'done', 'h2')""");
        jdbc.update("UPDATE vlm_work_item SET content_hash = 'h1' WHERE id = 1");
        jdbc.update("INSERT INTO vlm_result (work_item_id, task, status, answer) VALUES (50, 'kind', 'done', '<b>photo</b>')");
        jdbc.update("UPDATE vlm_result SET reused_from_run = 5 WHERE work_item_id = 1");
        jdbc.update("""
                INSERT INTO vlm_result_history (work_item_id, task, replaced_by_attempt, status, error, answered_at)
                VALUES (1, 'kind', 2, 'failed', 'timeout', now())""");
        mvc.perform(get("/api/runs/7/items/1/history")).andExpect(status().isOk())
                .andExpect(jsonPath("$.itemKey").value("a.jpg"))
                .andExpect(jsonPath("$.contentHash").value("h1"))
                .andExpect(jsonPath("$.answers[0].answer").value("photo"))
                .andExpect(jsonPath("$.answers[0].reusedFromRun").value(5))
                .andExpect(jsonPath("$.replaced[0].replacedByAttempt").value(2))
                .andExpect(jsonPath("$.replaced[0].error").value("timeout"))
                .andExpect(jsonPath("$.otherRuns.length()").value(1))
                .andExpect(jsonPath("$.otherRuns[0].job").value("other-job"))
                .andExpect(jsonPath("$.otherRuns[0].itemKey").value("renamed.jpg"))
                .andExpect(jsonPath("$.otherRuns[0].answers[0].answer").value("<b>photo</b>"));
        // an item of another run, an unknown item, ids that are not numbers
        mvc.perform(get("/api/runs/7/items/50/history")).andExpect(status().isNotFound());
        mvc.perform(get("/api/runs/7/items/999/history")).andExpect(status().isNotFound());
        mvc.perform(get("/api/runs/{r}/items/{i}/history", "7", "1 OR 1=1")).andExpect(status().isBadRequest());
        mvc.perform(get("/api/runs/{r}/items/{i}/history", "-1", "99999999999999999999999")).andExpect(status().isBadRequest());
    }

    @Test
    void hostileParametersAreRefusedClearly() throws Exception {
        mvc.perform(get("/api/runs/7/results").param("status", "done' OR '1'='1"))
                .andExpect(status().isBadRequest()).andExpect(content().string(containsString("status must be one of [pending, done, failed]")));
        mvc.perform(get("/api/runs/7/results").param("size", "201")).andExpect(status().isBadRequest());
        mvc.perform(get("/api/runs/7/results").param("size", "0")).andExpect(status().isBadRequest());
        mvc.perform(get("/api/runs/7/results").param("page", "-1")).andExpect(status().isBadRequest());
        mvc.perform(get("/api/runs/7/results").param("q", "x".repeat(201))).andExpect(status().isBadRequest());
        mvc.perform(get("/api/runs/{id}", "7 OR 1=1; DROP TABLE vlm_run")).andExpect(status().isBadRequest());
        mvc.perform(get("/api/runs/7/items/99/thumbnail")).andExpect(status().isNotFound());
        mvc.perform(get("/api/runs/7")).andExpect(status().isOk());
    }
}
