package io.vlmbatch.pipeline;

import static io.vlmbatch.testsupport.ArchiveFiles.members;
import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.ArchiveFiles;
import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.RunDatabase;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.awt.Color;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.commons.csv.CSVFormat;
import org.apache.commons.csv.CSVRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Archives as a source, end to end against the real inference server: loose images, a multi-page PDF,
 * a multi-page TIFF, a ZIP holding images and a PDF, a TAR.GZ and an encrypted PDF in one folder give
 * one CSV row and one JSONL record per page or image, each with source_uri, member and page; a killed
 * run over a long PDF resumes with no page lost or asked twice.
 */
class ArchivesJobIT {

    private static final JsonMapper JSON = JsonMapper.builder().build();

    @Test
    void aFolderOfImagesPdfsTiffsAndArchivesBecomesOneRowPerPageWithLineage(@TempDir Path work) throws Exception {
        Path images = work.resolve("images");
        Files.createDirectories(images);
        Files.write(images.resolve("a.jpg"), ImageFiles.jpeg(320, 240, 1));
        Files.write(images.resolve("b.jpg"), ImageFiles.jpeg(240, 320, 2));
        Files.write(images.resolve("letter.pdf"), ArchiveFiles.textPdf(3, "Dear archivist"));
        Files.write(images.resolve("stack.tif"), ArchiveFiles.multiPageTiff(400, 500, Color.RED, Color.GREEN, Color.BLUE));
        Files.write(images.resolve("box.zip"), ArchiveFiles.zip(members(
                "photos/c.jpg", ImageFiles.jpeg(200, 150, 3),
                "photos/d.jpg", ImageFiles.jpeg(150, 200, 4),
                "docs/inner.pdf", ArchiveFiles.scannedPdf(Color.RED, Color.BLUE),
                "readme.txt", "not an image".getBytes())));
        Files.write(images.resolve("bundle.tar.gz"), ArchiveFiles.tarGz(members(
                "e.jpg", ImageFiles.jpeg(100, 100, 5),
                "scans/two.pdf", ArchiveFiles.textPdf(2, "in a tarball"))));
        Files.write(images.resolve("locked.pdf"), ArchiveFiles.encryptedPdf("secret"));
        try (VlmServeProcess server = VlmServeProcess.start(work)) {
            Path job = work.resolve("archives.yaml");
            Files.writeString(job, """
                    name: archives
                    source: { folder: images }
                    tasks:
                      - { name: caption, template: describe, max_tokens: 8 }
                      - { name: text, template: ocr, max_tokens: 8 }
                    output: { csv: "out/archives.csv", jsonl: "out/archives.jsonl", documents: "out/archives-documents.jsonl" }
                    inference: { base_url: "%s", concurrency: 8, retries: 2, backoff_ms: 100, timeout_s: 20 }
                    run: { chunk_size: 4, partitions: 2 }
                    """.formatted(server.baseUrl()));
            Launcher launcher = new Launcher(work.resolve("data"), work);

            Launcher.Result r = launcher.run(420, "run", job.toString(), "--date", "2026-05-01");

            assertThat(r.exitCode()).as(r.output()).isZero();
            assertThat(r.output()).contains("COMPLETED").contains("15 done (0 reused from earlier runs, 15 asked), 1 failed");
            // readme.txt in box.zip has no item: the summary counts it
            assertThat(r.output()).contains("archives: 4 documents, 10 pages, 1 member skipped (unknown type)");

            String base = images.toUri().toString();
            List<CSVRecord> rows;
            try (var in = Files.newBufferedReader(work.resolve("out/archives.csv"));
                 var parser = CSVFormat.RFC4180.builder().setHeader().setSkipHeaderRecord(true).get().parse(in)) {
                rows = parser.getRecords();
            }
            Map<String, CSVRecord> byKey = rows.stream().collect(Collectors.toMap(c -> c.get("item_key"), c -> c));
            assertThat(byKey.keySet()).containsExactlyInAnyOrder(
                    "a.jpg", "b.jpg",
                    "letter.pdf#p1", "letter.pdf#p2", "letter.pdf#p3",
                    "stack.tif#p1", "stack.tif#p2", "stack.tif#p3",
                    "box.zip!/photos/c.jpg", "box.zip!/photos/d.jpg", "box.zip!/docs/inner.pdf#p1", "box.zip!/docs/inner.pdf#p2",
                    "bundle.tar.gz!/e.jpg", "bundle.tar.gz!/scans/two.pdf#p1", "bundle.tar.gz!/scans/two.pdf#p2",
                    "locked.pdf");
            assertThat(lineage(byKey.get("a.jpg"))).containsExactly(base + "a.jpg", "", "", "done");
            assertThat(lineage(byKey.get("letter.pdf#p2"))).containsExactly(base + "letter.pdf", "", "2", "done");
            assertThat(lineage(byKey.get("stack.tif#p3"))).containsExactly(base + "stack.tif", "", "3", "done");
            assertThat(lineage(byKey.get("box.zip!/docs/inner.pdf#p2"))).containsExactly(base + "box.zip", "docs/inner.pdf", "2", "done");
            assertThat(lineage(byKey.get("box.zip!/photos/c.jpg"))).containsExactly(base + "box.zip", "photos/c.jpg", "", "done");
            assertThat(lineage(byKey.get("bundle.tar.gz!/scans/two.pdf#p1"))).containsExactly(base + "bundle.tar.gz", "scans/two.pdf", "1", "done");
            assertThat(byKey.get("locked.pdf").get("status")).isEqualTo("failed");
            assertThat(byKey.get("locked.pdf").get("error")).isEqualTo("encrypted PDF: a password is needed to open it");
            // the tiny random model's answer may be any string, the empty one too (its greedy tokens can shift with
            // how the server batched the requests): what is checked is that each task's answer is there
            assertThat(byKey.get("letter.pdf#p1").isSet("caption")).isTrue();

            List<JsonNode> items = Files.readAllLines(work.resolve("out/archives.jsonl")).stream().map(JSON::readTree).toList();
            assertThat(items).hasSize(16);
            JsonNode p2 = items.stream().filter(i -> i.get("item_key").asString().equals("box.zip!/docs/inner.pdf#p2")).findFirst().orElseThrow();
            assertThat(p2.get("source_uri").asString()).isEqualTo(base + "box.zip");
            assertThat(p2.get("member").asString()).isEqualTo("docs/inner.pdf");
            assertThat(p2.get("page").asInt()).isEqualTo(2);
            assertThat(p2.get("status").asString()).isEqualTo("done");
            assertThat(p2.get("answers").get("caption").isString()).isTrue();
            assertThat(p2.get("answers").get("text").isString()).isTrue();

            List<JsonNode> docs = Files.readAllLines(work.resolve("out/archives-documents.jsonl")).stream().map(JSON::readTree).toList();
            JsonNode letter = docs.stream().filter(d -> d.get("document").asString().equals("letter.pdf")).findFirst().orElseThrow();
            assertThat(letter.get("pages").asInt()).isEqualTo(3);
            assertThat(letter.get("status").asString()).isEqualTo("done");
            assertThat(letter.get("answers").get("text")).hasSize(3);
            for (int p = 0; p < 3; p++) {
                String key = "letter.pdf#p" + (p + 1);
                JsonNode item = items.stream().filter(i -> i.get("item_key").asString().equals(key)).findFirst().orElseThrow();
                // against the items JSONL: CSV cells may be neutralised (a leading ' before = + - @)
                assertThat(letter.get("answers").get("text").get(p).asString()).isEqualTo(item.get("answers").get("text").asString());
            }
            assertThat(docs).extracting(d -> d.get("document").asString()).contains("box.zip!/docs/inner.pdf", "stack.tif",
                    "bundle.tar.gz!/scans/two.pdf", "box.zip!/photos/c.jpg", "a.jpg", "locked.pdf");
            assertThat(docs).hasSize(10);

            Launcher.Result export = launcher.run(120, "export", job.toString(), "--date", "2026-05-01", "--jsonl", "again.jsonl");
            assertThat(export.exitCode()).as(export.output()).isZero();
            assertThat(export.output()).contains("wrote 16 records to again.jsonl");
            assertThat(Files.readAllLines(work.resolve("again.jsonl"))).isEqualTo(Files.readAllLines(work.resolve("out/archives.jsonl")));
        }
    }

    @Test
    void changingPdfDpiAsksThePdfPagesAgainAndReusesEverythingElse(@TempDir Path work) throws Exception {
        Path images = Files.createDirectories(work.resolve("images"));
        Files.write(images.resolve("a.jpg"), ImageFiles.jpeg(320, 240, 1));
        Files.write(images.resolve("letter.pdf"), ArchiveFiles.textPdf(2, "Dear archivist"));
        Files.write(images.resolve("stack.tif"), ArchiveFiles.multiPageTiff(300, 400, Color.RED, Color.GREEN));
        try (VlmServeProcess server = VlmServeProcess.start(work)) {
            Launcher launcher = new Launcher(work.resolve("data"), work);
            String[] outputs = new String[3];
            int[] dpis = {72, 72, 96};
            for (int i = 0; i < 3; i++) {
                Path job = work.resolve("dpi.yaml");
                Files.writeString(job, """
                        name: dpi
                        source: { folder: images }
                        pdf: { dpi: %d }
                        tasks:
                          - { name: text, prompt: "Read page {{page}} of {{file_name}} {{member}}", max_tokens: 8 }
                        output: { csv: "out/dpi.csv" }
                        inference: { base_url: "%s", concurrency: 4, retries: 2, backoff_ms: 100, timeout_s: 20 }
                        """.formatted(dpis[i], server.baseUrl()));
                Launcher.Result r = launcher.run(300, "run", job.toString(), "--date", "2026-05-1" + i);
                assertThat(r.exitCode()).as(r.output()).isZero();
                outputs[i] = r.output();
            }
            assertThat(outputs[0]).contains("5 done (0 reused from earlier runs, 5 asked)");
            assertThat(outputs[1]).contains("5 done (5 reused from earlier runs, 0 asked)");
            // the two PDF pages are rendered differently now; the image and the TIFF frames are not
            assertThat(outputs[2]).contains("5 done (3 reused from earlier runs, 2 asked)");
        }
    }

    @Test
    void aRunKilledInTheMiddleOfALongPdfResumesWithNoPageLostOrAskedTwice(@TempDir Path work) throws Exception {
        int pages = 80;
        Path images = Files.createDirectories(work.resolve("images"));
        Files.write(images.resolve("long.pdf"), ArchiveFiles.textPdf(pages, "a long report"));
        try (VlmServeProcess server = VlmServeProcess.start(work)) {
            Path job = JobFiles.write(work, "longpdf", server.baseUrl(), 4, 1, 3);
            Launcher launcher = new Launcher(work.resolve("data"), work);
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                Process run = launcher.start(work.resolve("run.log"), "run", job.toString(), "--date", "2026-05-02");
                long doneAtKill = Polling.until(() -> run.isAlive() ? RestartIT.doneCount(db, "longpdf") : -1, n -> n < 0 || n >= 12);
                assertThat(run.isAlive()).as("the run was still going at the kill\n" + Files.readString(work.resolve("run.log"))).isTrue();
                run.destroyForcibly();
                run.waitFor();
                long runId = db.runId("longpdf");
                assertThat(doneAtKill).isLessThan(pages);

                Launcher.Result restart = launcher.run(400, "restart", job.toString(), "--date", "2026-05-02");

                assertThat(restart.exitCode()).as(restart.output()).isZero();
                assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId)).isEqualTo(pages);
                assertThat(db.count("SELECT count(DISTINCT page) FROM vlm_work_item WHERE run_id = ? AND uri LIKE '%long.pdf'", runId))
                        .isEqualTo(pages);
                assertThat(db.count("""
                        SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                        WHERE w.run_id = ? AND r.status = 'done'""", runId)).isEqualTo(pages * 2L);
                long answered = server.requestsFinished();
                System.out.printf("ArchivesJobIT: killed at %d/%d pages done; server answered %d requests for %d (page, task) pairs%n",
                        doneAtKill, pages, answered, pages * 2);
                // at most the chunk in flight at the kill (4 pages x 2 tasks) is asked again, client retries aside
                long retries = Files.readString(work.resolve("run.log")).lines()
                        .filter(l -> l.contains("/v1/chat/completions failed") && l.contains(", retry ")).count()
                        + restart.output().lines().filter(l -> l.contains("/v1/chat/completions failed") && l.contains(", retry ")).count();
                assertThat(answered - pages * 2L - retries).isBetween(-retries, 8L);
            }
        }
    }

    private static List<String> lineage(CSVRecord row) {
        return List.of(row.get("source_uri"), row.get("member"), row.get("page"), row.get("status"));
    }
}
