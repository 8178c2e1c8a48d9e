package io.vlmbatch.web;

import io.vlmbatch.VlmBatchApplication;
import io.vlmbatch.testsupport.ArchiveFiles;
import io.vlmbatch.testsupport.RepoPaths;
import io.vlmbatch.testsupport.TestPostgres;
import java.awt.Color;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.springframework.boot.SpringApplication;
import org.springframework.context.ConfigurableApplicationContext;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The serve app as the web tests use it: a real embedded PostgreSQL, the real inference server on the
 * tiny random model, and the app (scheduler, API, UI) on a random port with a jobs folder of
 * <ul>
 *   <li>gallery — samples/ plus a text file named .jpg, cron daily at midnight UTC from three days ago
 *       with catchup, so the scheduler runs three logical dates by itself;</li>
 *   <li>broken — a job file with an error, listed with it;</li>
 *   <li>hostile markup where the page shows outside text: an image file named {@link #HOSTILE_IMAGE} and a
 *       broken job file whose file name and job name are markup that would set window.pwned if it ran;</li>
 *   <li>with documents: documents — a 3-frame TIFF and a ZIP whose members are named with markup (an image
 *       {@link #HOSTILE_MEMBER}, a 2-page PDF {@link #HOSTILE_PDF}, and a text file that is skipped), cron
 *       daily from yesterday, so the scheduler runs it once.</li>
 * </ul>
 */
final class ServeFixture implements AutoCloseable {
    static final JsonMapper JSON = JsonMapper.builder().build();
    static final String HOSTILE_IMAGE = "<img src=x onerror=window.pwned='file-name'>.jpg";
    static final String HOSTILE_JOB_FILE = "<img src=x onerror=window.pwned='job-file'>.yaml";
    static final String HOSTILE_MEMBER = "<img src=x onerror=window.pwned='member'>.jpg";
    static final String HOSTILE_PDF = "scans/\"><img src=x onerror=window.pwned='document'>.pdf";

    final Path dir;
    final TestPostgres pg;
    final VlmServeProcess vlm;
    final ConfigurableApplicationContext app;
    final String base;
    final int images;
    final LocalDate start = LocalDate.now(ZoneOffset.UTC).minusDays(3);

    ServeFixture(Path dir) throws Exception {
        this(dir, false);
    }

    ServeFixture(Path dir, boolean documents) throws Exception {
        this.dir = dir;
        pg = TestPostgres.start(dir.resolve("pg"));
        vlm = VlmServeProcess.start(dir);
        Path jobs = dir.resolve("jobs");
        Path images = jobs.resolve("images");
        Files.createDirectories(images);
        int n = 0;
        try (Stream<Path> s = Files.list(RepoPaths.root().resolve("samples"))) {
            for (Path p : s.filter(p -> p.toString().matches(".*\\.(jpg|png)")).sorted().toList()) {
                Files.copy(p, images.resolve(p.getFileName()));
                n++;
            }
        }
        Files.writeString(images.resolve("not-an-image.jpg"), "just text\n");
        Files.copy(RepoPaths.root().resolve("samples/cat.jpg"), images.resolve(HOSTILE_IMAGE));
        this.images = n + 1;
        Files.writeString(jobs.resolve("gallery.yaml"), """
                name: gallery
                schedule: "0 0 * * *"
                scheduling: { start_date: %s, catchup: true, max_active_runs: 1, retries: 1, retry_delay: 5s }
                source: { folder: images, include: ["*.jpg", "*.png"] }
                tasks:
                  - { name: caption, template: describe, max_tokens: 24 }
                  - { name: kind, template: classify, labels: [photo, document, chart, screenshot] }
                inference: { base_url: "%s", concurrency: 8 }
                run: { chunk_size: 4, partitions: 2 }
                output: { csv: "out/{{ job }}-{{ ds_nodash }}.csv" }
                """.formatted(start, vlm.baseUrl()));
        if (documents) {
            Path docs = Files.createDirectories(jobs.resolve("documents"));
            ArchiveFiles.write(docs.resolve("stack.tif"), ArchiveFiles.multiPageTiff(600, 800, Color.RED, Color.GREEN, Color.BLUE));
            ArchiveFiles.write(docs.resolve("hostile.zip"), ArchiveFiles.zip(ArchiveFiles.members(
                    HOSTILE_MEMBER, Files.readAllBytes(RepoPaths.root().resolve("samples/cat.jpg")),
                    HOSTILE_PDF, ArchiveFiles.textPdf(2, "<script>window.pwned='pdf-text'</script>"),
                    "notes.txt", "not an image".getBytes(java.nio.charset.StandardCharsets.UTF_8))));
            Files.writeString(jobs.resolve("documents.yaml"), """
                    name: documents
                    schedule: "0 0 * * *"
                    scheduling: { start_date: %s, catchup: true, max_active_runs: 1 }
                    source: { folder: documents }
                    tasks:
                      - { name: caption, template: describe, max_tokens: 16 }
                      - { name: text, prompt: "Read page {{page}} of {{member}}", max_tokens: 16 }
                    inference: { base_url: "%s", concurrency: 8 }
                    run: { chunk_size: 4, partitions: 2 }
                    """.formatted(start.plusDays(2), vlm.baseUrl()));
        }
        Files.writeString(jobs.resolve("broken.yaml"), "name: broken\nsource: { folder: images }\ntasks: []\n");
        Files.writeString(jobs.resolve(HOSTILE_JOB_FILE), "name: \"<img src=x onerror=window.pwned='job-name'>\"\n");

        List<String> args = new ArrayList<>(List.of(
                "--spring.main.web-application-type=servlet",
                "--server.port=0",
                "--spring.datasource.url=" + pg.jdbcUrl(),
                "--spring.datasource.username=" + pg.user(), "--spring.datasource.password=" + pg.password(),
                "--vlm.jobs-dir=" + jobs,
                "--vlm.playground.base-url=" + vlm.baseUrl(),
                "--vlm.scheduler.tick-ms=500"));
        SpringApplication sa = new SpringApplication(VlmBatchApplication.class, ServeConfig.class);
        app = sa.run(args.toArray(String[]::new));
        base = "http://127.0.0.1:" + app.getEnvironment().getProperty("local.server.port") + "/";
    }

    JsonNode get(String path) throws Exception {
        try (HttpClient http = HttpClient.newHttpClient()) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + path)).build(), HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) throw new AssertionError("GET " + path + " -> " + r.statusCode() + ": " + r.body());
            return JSON.readTree(r.body());
        }
    }

    /** Waits until the scheduler has run the documents job's one date to success; its run id. */
    long awaitDocuments(Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        JsonNode runs = null;
        while (System.nanoTime() < deadline) {
            runs = get("api/jobs/documents/runs");
            for (JsonNode r : runs) if (r.path("state").asString().equals("success")) return r.path("runId").asLong();
            Thread.sleep(500);
        }
        throw new AssertionError("the documents run did not succeed in " + timeout + ": " + runs);
    }

    /** Waits until the scheduler has run the three catchup dates to success. */
    JsonNode awaitCatchup(Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        JsonNode runs = null;
        while (System.nanoTime() < deadline) {
            runs = get("api/jobs/gallery/runs");
            int ok = 0;
            for (JsonNode r : runs) if (r.path("state").asString().equals("success")) ok++;
            if (ok >= 3) return runs;
            Thread.sleep(500);
        }
        throw new AssertionError("the three catchup runs did not succeed in " + timeout + ": " + runs);
    }

    @Override
    public void close() throws Exception {
        if (app != null) app.close();
        vlm.close();
        pg.close();
    }
}
