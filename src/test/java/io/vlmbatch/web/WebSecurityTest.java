package io.vlmbatch.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vlmbatch.VlmBatchApplication;
import io.vlmbatch.db.EmbeddedPostgresServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.SpringApplication;
import org.springframework.context.ConfigurableApplicationContext;

/** Bound beyond loopback, serve insists on a configured user and then requires login (real HTTP, real PostgreSQL). */
class WebSecurityTest {
    @TempDir
    static Path tmp;
    static EmbeddedPostgresServer pg;

    @BeforeAll
    static void database() throws Exception {
        pg = EmbeddedPostgresServer.startOrJoin(tmp.resolve("pg"));
        Files.createDirectories(tmp.resolve("jobs"));
    }

    @AfterAll
    static void stop() {
        pg.close();
    }

    static ConfigurableApplicationContext start(String... extra) {
        String[] base = {"--spring.main.web-application-type=servlet", "--server.port=0", "--server.address=0.0.0.0",
                "--spring.datasource.url=" + pg.jdbcUrl(), "--spring.datasource.username=" + pg.user(),
                "--vlm.jobs-dir=" + tmp.resolve("jobs"), "--vlm.scheduler.enabled=false"};
        String[] args = java.util.stream.Stream.concat(java.util.Arrays.stream(base), java.util.Arrays.stream(extra)).toArray(String[]::new);
        return new SpringApplication(VlmBatchApplication.class, ServeConfig.class).run(args);
    }

    @Test
    void refusesToListenOnTheNetworkWithoutAUser() {
        assertThatThrownBy(WebSecurityTest::start).rootCause().hasMessageContaining("set VLM_WEB_USER and VLM_WEB_PASSWORD");
    }

    @Test
    void requiresLoginWhenBoundBeyondLoopback() throws Exception {
        try (ConfigurableApplicationContext app = start("--vlm.web.user=ops", "--vlm.web.password=s3cret");
             HttpClient http = HttpClient.newHttpClient()) {
            String base = "http://127.0.0.1:" + app.getEnvironment().getProperty("local.server.port") + "/";
            HttpResponse<String> anonymous = http.send(HttpRequest.newBuilder(URI.create(base + "api/jobs"))
                    .header("Accept", "application/json").build(), HttpResponse.BodyHandlers.ofString());
            assertThat(anonymous.statusCode()).isEqualTo(401);
            String auth = "Basic " + Base64.getEncoder().encodeToString("ops:s3cret".getBytes(StandardCharsets.UTF_8));
            HttpResponse<String> ok = http.send(HttpRequest.newBuilder(URI.create(base + "api/jobs")).header("Authorization", auth).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(ok.statusCode()).isEqualTo(200);
            String wrong = "Basic " + Base64.getEncoder().encodeToString("ops:nope".getBytes(StandardCharsets.UTF_8));
            assertThat(http.send(HttpRequest.newBuilder(URI.create(base + "api/jobs")).header("Authorization", wrong).build(),
                    HttpResponse.BodyHandlers.ofString()).statusCode()).isEqualTo(401);
            assertThat(http.send(HttpRequest.newBuilder(URI.create(base + "actuator/health")).build(),
                    HttpResponse.BodyHandlers.ofString()).statusCode()).as("health stays open for probes").isEqualTo(200);
        }
    }
}
