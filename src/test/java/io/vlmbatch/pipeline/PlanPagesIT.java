package io.vlmbatch.pipeline;

import static io.vlmbatch.testsupport.ArchiveFiles.members;
import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.ArchiveFiles;
import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.awt.Color;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * `plan` over pages of documents and archive members, through the launcher against the real vlmserve
 * (requests counted on the server's /metrics): before each night it counts the items, documents and
 * pages the run then makes, and says how many are reused and new exactly as the run then finds them,
 * with prompts that name the page and member and a set {@code pdf.dpi} in the fingerprint.
 */
class PlanPagesIT {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final int TASKS = 2;

    @Test
    void planSaysWhatEachNightThenDoesOverPagesAndMembers(@TempDir Path work) throws Exception {
        Path images = Files.createDirectories(work.resolve("images"));
        Files.write(images.resolve("a.jpg"), ImageFiles.jpeg(320, 240, 1));
        Files.write(images.resolve("b.jpg"), ImageFiles.jpeg(320, 240, 2));
        Files.write(images.resolve("letter.pdf"), ArchiveFiles.scannedPdf(Color.RED, Color.GREEN, Color.BLUE));
        Files.write(images.resolve("stack.tif"), ArchiveFiles.multiPageTiff(300, 400, Color.RED, Color.GREEN));
        Files.write(images.resolve("box.zip"), ArchiveFiles.zip(members(
                "photos/c.jpg", ImageFiles.jpeg(200, 150, 3),
                "docs/inner.pdf", ArchiveFiles.scannedPdf(Color.YELLOW, Color.CYAN))));
        // 2 loose images + 3 PDF pages + 2 TIFF frames + 1 member image + 2 pages of the PDF in the ZIP
        try (VlmServeProcess server = VlmServeProcess.start(work)) {
            Launcher launcher = new Launcher(work.resolve("data"), work);
            Path job = writeJob(work, server.baseUrl(), 72);

            long start = server.requestsFinished();
            Launcher.Result text = launcher.run(120, "plan", job.toString(), "--date", "2026-06-01");
            assertThat(text.exitCode()).as(text.output()).isZero();
            assertThat(text.output()).contains("items:     10").contains("pages:     7 in 3 documents")
                    .contains("new:       10").contains("requests:  20");

            JsonNode plan1 = plan(launcher, job, "2026-06-01");
            assertCounts(plan1, 10, 3, 7, 0, 10, 20);
            long before = server.requestsFinished();
            assertThat(before).as("plan sends no request").isEqualTo(start);
            Launcher.Result night1 = launcher.run(300, "run", job.toString(), "--date", "2026-06-01");
            assertThat(night1.exitCode()).as(night1.output()).isZero();
            assertThat(night1.output()).contains("10 done (0 reused from earlier runs, 10 asked)");
            assertThat(server.requestsFinished() - before).as("night 1 asks what plan said").isEqualTo(plan1.path("requests").asLong());

            // night 2: the same files and one new two-page document
            Files.write(images.resolve("new.pdf"), ArchiveFiles.scannedPdf(Color.MAGENTA, Color.ORANGE));
            JsonNode plan2 = plan(launcher, job, "2026-06-02");
            assertCounts(plan2, 12, 4, 9, 10, 2, 4);
            before = server.requestsFinished();
            Launcher.Result night2 = launcher.run(300, "run", job.toString(), "--date", "2026-06-02");
            assertThat(night2.exitCode()).as(night2.output()).isZero();
            assertThat(night2.output()).contains("12 done (10 reused from earlier runs, 2 asked)");
            assertThat(server.requestsFinished() - before).as("night 2 sends new x tasks")
                    .isEqualTo(plan2.path("new_items").asLong() * TASKS).isEqualTo(plan2.path("requests").asLong());

            // night 3 renders PDF pages at another dpi: plan says those 7 pages are new, the rest reused
            writeJob(work, server.baseUrl(), 96);
            JsonNode plan3 = plan(launcher, job, "2026-06-03");
            assertCounts(plan3, 12, 4, 9, 5, 7, 14);
            before = server.requestsFinished();
            Launcher.Result night3 = launcher.run(300, "run", job.toString(), "--date", "2026-06-03");
            assertThat(night3.exitCode()).as(night3.output()).isZero();
            assertThat(night3.output()).contains("12 done (5 reused from earlier runs, 7 asked)");
            assertThat(server.requestsFinished() - before).isEqualTo(plan3.path("requests").asLong());
        }
    }

    private static JsonNode plan(Launcher launcher, Path job, String date) throws Exception {
        Launcher.Result r = launcher.run(120, "plan", job.toString(), "--date", date, "--json");
        assertThat(r.exitCode()).as(r.output()).isZero();
        return JSON.readTree(r.output().lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElseThrow());
    }

    private static void assertCounts(JsonNode plan, long items, long documents, long pages, long reused, long fresh,
                                     long requests) {
        assertThat(plan.path("items").asLong()).as("items " + plan).isEqualTo(items);
        assertThat(plan.path("documents").asLong()).as("documents " + plan).isEqualTo(documents);
        assertThat(plan.path("pages").asLong()).as("pages " + plan).isEqualTo(pages);
        assertThat(plan.path("reused_items").asLong()).as("reused " + plan).isEqualTo(reused);
        assertThat(plan.path("new_items").asLong()).as("new " + plan).isEqualTo(fresh);
        assertThat(plan.path("unreadable_items").asLong()).as("unreadable " + plan).isZero();
        assertThat(plan.path("requests").asLong()).as("requests " + plan).isEqualTo(requests);
    }

    private static Path writeJob(Path dir, String baseUrl, int dpi) throws Exception {
        Path file = dir.resolve("pages.yaml");
        Files.writeString(file, """
                name: pages
                source: { folder: images }
                pdf: { dpi: %d }
                tasks:
                  - { name: text, prompt: "Read page {{page}} of {{file_name}} {{member}}", max_tokens: 8 }
                  - { name: kind, template: classify, labels: [photo, document, chart] }
                output: { csv: "out/pages.csv" }
                inference: { base_url: "%s", concurrency: 8, retries: 2, backoff_ms: 100, timeout_s: 20 }
                run: { chunk_size: 4, partitions: 1 }
                """.formatted(dpi, baseUrl));
        return file;
    }
}
