package io.vlmbatch.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vlmbatch.VlmBatchApplication;
import io.vlmbatch.testsupport.RepoPaths;
import io.vlmbatch.testsupport.TestPostgres;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.SpringApplication;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.core.env.MutablePropertySources;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.env.SystemEnvironmentPropertySource;
import org.yaml.snakeyaml.Yaml;

/**
 * docker-compose.yml and the Dockerfile as deployed (no Docker engine here, so the app is started with
 * exactly the environment compose would give its container): the unauthenticated inference server is
 * published on no host port, compose refuses to start without a web password, and with it the app
 * listens beyond loopback and requires login.
 */
class DockerComposeTest {
    @TempDir
    static Path tmp;
    static TestPostgres pg;
    static Map<String, Object> services;

    @BeforeAll
    @SuppressWarnings("unchecked")
    static void read() throws Exception {
        Map<String, Object> compose = new Yaml().load(Files.readString(RepoPaths.root().resolve("docker-compose.yml")));
        services = (Map<String, Object>) compose.get("services");
        pg = TestPostgres.start(tmp.resolve("pg"));
        Files.createDirectories(tmp.resolve("jobs"));
    }

    @AfterAll
    static void stop() {
        pg.close();
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> service(String name) {
        return (Map<String, Object>) services.get(name);
    }

    /** Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error} (an unset VAR stops compose). */
    static String interpolate(String value, Map<String, String> shell) {
        Matcher m = Pattern.compile("\\$\\{([A-Z_]+)(?::([-?])([^}]*))?}").matcher(value);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String v = shell.get(m.group(1));
            if (v == null || v.isEmpty()) {
                if ("?".equals(m.group(2))) throw new IllegalStateException("compose: " + m.group(3));
                v = "-".equals(m.group(2)) ? m.group(3) : "";
            }
            m.appendReplacement(out, Matcher.quoteReplacement(v));
        }
        return m.appendTail(out).toString();
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> appEnvironment(Map<String, String> shell) {
        Map<String, Object> env = new HashMap<>();
        ((Map<String, Object>) service("app").get("environment")).forEach((k, v) -> env.put(k, interpolate(String.valueOf(v), shell)));
        return env;
    }

    @Test
    void theInferenceServerIsPublishedOnNoHostPortAndOtherPortsOnlyWhereIntended() {
        assertThat(service("inference")).as("vlmserve has no login").doesNotContainKey("ports");
        assertThat(service("app").get("ports").toString()).contains("8080:8080");
        for (String name : services.keySet()) {
            if (name.equals("app") || !service(name).containsKey("ports")) continue;
            for (Object p : (List<?>) service(name).get("ports")) {
                assertThat(p.toString()).as(name + " publishes " + p + " beyond this machine").startsWith("127.0.0.1:");
            }
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void theWorkersProfileAddsABrokerAndTwoWorkersThatShareTheAppsDatabaseBrokerAndJobPaths() {
        List<String> workers = services.keySet().stream().filter(n -> n.startsWith("worker-")).sorted().toList();
        assertThat(workers).containsExactly("worker-1", "worker-2");
        for (String name : List.of("rabbitmq", "worker-1", "worker-2")) {
            assertThat((List<String>) service(name).get("profiles")).as(name + " only with --profile workers").containsExactly("workers");
        }
        assertThat(service("rabbitmq")).as("the broker is reached on the compose network only").doesNotContainKey("ports");
        Map<String, Object> app = appEnvironment(Map.of("VLM_WEB_PASSWORD", "x"));
        for (String name : workers) {
            Map<String, Object> w = service(name);
            assertThat((List<String>) w.get("command")).startsWith("worker");
            assertThat(w.get("image")).isEqualTo(service("app").get("image"));
            Map<String, Object> env = new HashMap<>();
            ((Map<String, Object>) w.get("environment")).forEach((k, v) -> env.put(k, interpolate(String.valueOf(v), Map.of())));
            for (String key : List.of("SPRING_DATASOURCE_URL", "SPRING_DATASOURCE_PASSWORD", "SPRING_RABBITMQ_HOST", "SPRING_RABBITMQ_PASSWORD",
                    "AWS_ACCESS_KEY_ID")) {
                assertThat(env.get(key)).as(name + " " + key + " as the app's").isEqualTo(app.get(key)).isNotNull();
            }
            // a worker reads each run's job file at the path the app recorded: jobs/ is mounted where the app has it
            assertThat(w.get("volumes").toString()).contains("./jobs:/app/jobs");
            assertThat(service("app").get("volumes").toString()).contains("./jobs:/app/jobs");
        }
        assertThat(String.valueOf(((Map<String, Object>) service("rabbitmq").get("environment")).get("RABBITMQ_DEFAULT_PASS")))
                .isEqualTo("${RABBITMQ_PASSWORD:-change-me-rabbitmq}");
        assertThat(String.valueOf(app.get("SPRING_RABBITMQ_PASSWORD"))).isEqualTo("change-me-rabbitmq");
    }

    @Test
    void composeRefusesToStartWithoutAWebPassword() {
        assertThatThrownBy(() -> appEnvironment(Map.of())).hasMessageContaining("VLM_WEB_PASSWORD");
    }

    @Test
    void theAppInItsContainerListensBeyondLoopbackAndRequiresTheLogin() throws Exception {
        Map<String, Object> env = appEnvironment(Map.of("VLM_WEB_PASSWORD", "from .env"));
        assertThat(env.get("SERVER_ADDRESS")).isEqualTo("0.0.0.0");
        // the container's database and port are not ours: the test's PostgreSQL and a free port instead
        env.put("SPRING_DATASOURCE_URL", pg.jdbcUrl());
        env.put("SPRING_DATASOURCE_USERNAME", pg.user());
        env.put("SPRING_DATASOURCE_PASSWORD", pg.password());
        env.put("SERVER_PORT", "0");
        SpringApplication app = new SpringApplication(VlmBatchApplication.class, ServeConfig.class);
        app.setEnvironment(environment(env));
        try (ConfigurableApplicationContext ctx = app.run("--spring.main.web-application-type=servlet",
                "--vlm.jobs-dir=" + tmp.resolve("jobs"), "--vlm.scheduler.enabled=false");
             HttpClient http = HttpClient.newHttpClient()) {
            String url = "http://127.0.0.1:" + ctx.getEnvironment().getProperty("local.server.port") + "/api/jobs";
            assertThat(http.send(HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.ofString()).statusCode())
                    .isEqualTo(401);
            String auth = "Basic " + Base64.getEncoder().encodeToString("admin:from .env".getBytes(StandardCharsets.UTF_8));
            assertThat(http.send(HttpRequest.newBuilder(URI.create(url)).header("Authorization", auth).build(),
                    HttpResponse.BodyHandlers.ofString()).statusCode()).isEqualTo(200);
        }
    }

    @Test
    void theImageOnItsOwnListensBeyondLoopbackSoServeWantsALogin() throws Exception {
        assertThat(Files.readString(RepoPaths.root().resolve("Dockerfile"))).containsPattern("(?m)^\\s*SERVER_ADDRESS=0\\.0\\.0\\.0");
        SpringApplication app = new SpringApplication(VlmBatchApplication.class, ServeConfig.class);
        app.setEnvironment(environment(Map.of("SERVER_ADDRESS", "0.0.0.0", "SERVER_PORT", "0",
                "SPRING_DATASOURCE_URL", pg.jdbcUrl(), "SPRING_DATASOURCE_USERNAME", pg.user(),
                "SPRING_DATASOURCE_PASSWORD", pg.password())));
        assertThatThrownBy(() -> app.run("--spring.main.web-application-type=servlet", "--vlm.jobs-dir=" + tmp.resolve("jobs"),
                "--vlm.scheduler.enabled=false")).satisfies(e -> {
                    Throwable root = e;
                    while (root.getCause() != null) root = root.getCause();
                    assertThat(root.getMessage()).contains("set VLM_WEB_USER and VLM_WEB_PASSWORD");
                });
    }

    static StandardEnvironment environment(Map<String, Object> containerEnv) {
        return new StandardEnvironment() {
            @Override
            protected void customizePropertySources(MutablePropertySources sources) {
                super.customizePropertySources(sources);
                sources.addFirst(new SystemEnvironmentPropertySource("container environment", containerEnv));
            }
        };
    }
}
