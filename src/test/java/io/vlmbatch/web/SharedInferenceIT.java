package io.vlmbatch.web;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.VlmBatchApplication;
import io.vlmbatch.testsupport.RepoPaths;
import io.vlmbatch.testsupport.TestPostgres;
import java.net.ConnectException;
import java.net.CookieManager;
import java.net.HttpCookie;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.SpringApplication;
import org.springframework.context.ConfigurableApplicationContext;
import tools.jackson.databind.JsonNode;

/**
 * In serve, a job with {@code base_url: embedded} and the playground use one embedded vlmserve: the
 * first run starts it, the playground then asks the same server, and stopping serve stops it.
 */
class SharedInferenceIT {
    @Test
    void runsAndThePlaygroundShareOneEmbeddedServer(@TempDir Path dir) throws Exception {
        Path jobs = dir.resolve("jobs");
        Files.createDirectories(jobs.resolve("images"));
        Files.copy(RepoPaths.root().resolve("samples/cat.jpg"), jobs.resolve("images/cat.jpg"));
        Files.writeString(jobs.resolve("shared.yaml"), """
                name: shared
                source: { folder: images }
                tasks: [ { name: caption, template: describe, max_tokens: 8 } ]
                inference: { base_url: embedded, concurrency: 2 }
                """);
        String previousData = System.getProperty("vlm.data.dir");
        System.setProperty("vlm.data.dir", dir.resolve("data").toString()); // the embedded server's logs go there
        ConfigurableApplicationContext app = null;
        String serverUrl;
        try (TestPostgres pg = TestPostgres.start(dir.resolve("pg"));
             HttpClient http = HttpClient.newBuilder().cookieHandler(new CookieManager()).build()) {
            app = new SpringApplication(VlmBatchApplication.class, ServeConfig.class).run(
                    "--spring.main.web-application-type=servlet", "--server.port=0",
                    "--spring.datasource.url=" + pg.jdbcUrl(), "--spring.datasource.username=" + pg.user(), "--spring.datasource.password=" + pg.password(),
                    "--vlm.jobs-dir=" + jobs, "--vlm.scheduler.tick-ms=300");
            Client c = new Client(http, "http://127.0.0.1:" + app.getEnvironment().getProperty("local.server.port") + "/");
            assertThat(inferenceEndpoint(c)).isEqualTo("embedded (starts on first use)");

            assertThat(c.send("POST", "api/jobs/shared/trigger", HttpRequest.BodyPublishers.noBody(), null).statusCode()).isEqualTo(200);
            awaitSuccess(c, Duration.ofMinutes(4));
            serverUrl = inferenceEndpoint(c);
            assertThat(serverUrl).as("the run's server stays up for the others").startsWith("http://127.0.0.1:");

            String boundary = UUID.randomUUID().toString();
            HttpResponse<String> up = c.send("POST", "api/playground/sessions",
                    WebApiIT.multipart(boundary, "cat.jpg", "image/jpeg", Files.readAllBytes(jobs.resolve("images/cat.jpg"))),
                    "multipart/form-data; boundary=" + boundary);
            assertThat(up.statusCode()).as(up.body()).isEqualTo(200);
            String session = ServeFixture.JSON.readTree(up.body()).path("id").asString();
            HttpResponse<String> ask = c.send("POST", "api/playground/sessions/" + session + "/ask",
                    HttpRequest.BodyPublishers.ofString("{\"question\":\"What is it?\",\"maxTokens\":6}"), "application/json");
            assertThat(WebApiIT.events(ask.body(), "done")).as(ask.body()).hasSize(1);

            assertThat(inferenceEndpoint(c)).isEqualTo(serverUrl);
            try (Stream<Path> logs = Files.list(dir.resolve("data/logs"))) {
                assertThat(logs.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("vlmserve-")).toList())
                        .as("one embedded server was started").hasSize(1);
            }
        } finally {
            if (app != null) app.close();
            if (previousData == null) System.clearProperty("vlm.data.dir");
            else System.setProperty("vlm.data.dir", previousData);
        }
        try (HttpClient http = HttpClient.newHttpClient()) {
            http.send(HttpRequest.newBuilder(URI.create(serverUrl + "/health")).timeout(Duration.ofSeconds(5)).build(),
                    HttpResponse.BodyHandlers.discarding());
            throw new AssertionError("the embedded server still answers after serve stopped");
        } catch (ConnectException expected) {
            // stopped with serve
        }
    }

    private record Client(HttpClient http, String base) {
        HttpResponse<String> send(String method, String path, HttpRequest.BodyPublisher body, String contentType) throws Exception {
            get("api/jobs"); // the XSRF-TOKEN cookie
            String token = ((CookieManager) http.cookieHandler().orElseThrow()).getCookieStore().getCookies().stream()
                    .filter(k -> k.getName().equals("XSRF-TOKEN")).map(HttpCookie::getValue).findFirst().orElseThrow();
            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).method(method, body).header("X-XSRF-TOKEN", token);
            if (contentType != null) b.header("Content-Type", contentType);
            return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        }

        JsonNode get(String path) throws Exception {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + path)).build(), HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) throw new AssertionError("GET " + path + " -> " + r.statusCode() + ": " + r.body());
            return ServeFixture.JSON.readTree(r.body());
        }
    }

    private static String inferenceEndpoint(Client c) throws Exception {
        return c.get("actuator/health").path("components").path("inference").path("details").path("endpoint").asString();
    }

    private static void awaitSuccess(Client c, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        JsonNode runs = null;
        while (System.nanoTime() < deadline) {
            runs = c.get("api/jobs/shared/runs");
            for (JsonNode r : runs) if (r.path("state").asString().equals("success")) return;
            Thread.sleep(500);
        }
        throw new AssertionError("the run did not succeed in " + timeout + ": " + runs);
    }
}
