package io.vlmbatch.web;

import static org.hamcrest.Matchers.containsString;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.get;
import static org.springframework.test.web.servlet.result.MockMvcResultMatchers.content;
import static org.springframework.test.web.servlet.result.MockMvcResultMatchers.jsonPath;
import static org.springframework.test.web.servlet.result.MockMvcResultMatchers.status;

import io.vlmbatch.config.DatabaseConfig;
import io.vlmbatch.db.EmbeddedPostgresServer;
import io.vlmbatch.schedule.JobCatalog;
import io.vlmbatch.store.WorkItemStore;
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
    static EmbeddedPostgresServer pg;

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
        if (pg == null) pg = EmbeddedPostgresServer.startOrJoin(Files.createTempDirectory("runs-api").resolve("pg"));
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
