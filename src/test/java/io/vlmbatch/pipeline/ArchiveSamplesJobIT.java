package io.vlmbatch.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.RepoPaths;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
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
 * The README's archive command, end to end as a user runs it: jobs/archive-samples.yaml over the
 * checked-in samples-archives/ (loose images, a multi-page PDF, a multi-page TIFF, a ZIP with images, a
 * PDF and a text file, a TAR.GZ) through the packaged launcher, with the embedded PostgreSQL and the
 * embedded vlmserve on the tiny random model: one CSV row and one JSONL record per page or image,
 * each with source_uri, member and page.
 */
class ArchiveSamplesJobIT {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    /** item key -> {member, page}, from samples-archives/README.md's table. */
    private static final Map<String, List<String>> EXPECTED = Map.ofEntries(
            Map.entry("cat.jpg", List.of("", "")),
            Map.entry("chart.png", List.of("", "")),
            Map.entry("letters.pdf#p1", List.of("", "1")),
            Map.entry("letters.pdf#p2", List.of("", "2")),
            Map.entry("letters.pdf#p3", List.of("", "3")),
            Map.entry("ledger.tif#p1", List.of("", "1")),
            Map.entry("ledger.tif#p2", List.of("", "2")),
            Map.entry("ledger.tif#p3", List.of("", "3")),
            Map.entry("box.zip!/photos/coffee.jpg", List.of("photos/coffee.jpg", "")),
            Map.entry("box.zip!/photos/rocket.jpg", List.of("photos/rocket.jpg", "")),
            Map.entry("box.zip!/letters/1903.pdf#p1", List.of("letters/1903.pdf", "1")),
            Map.entry("box.zip!/letters/1903.pdf#p2", List.of("letters/1903.pdf", "2")),
            Map.entry("bundle.tar.gz!/astronaut.jpg", List.of("astronaut.jpg", "")),
            Map.entry("bundle.tar.gz!/scans/invoice.pdf#p1", List.of("scans/invoice.pdf", "1")),
            Map.entry("bundle.tar.gz!/scans/invoice.pdf#p2", List.of("scans/invoice.pdf", "2")));

    @Test
    void theArchiveSamplesGiveOneRowAndOneRecordPerPageOrImageWithTheirLineage(@TempDir Path data) throws Exception {
        Path root = RepoPaths.root();
        Path csv = root.resolve("out/archive-samples.csv");
        Path jsonl = root.resolve("out/archive-samples.jsonl");
        Path documents = root.resolve("out/archive-samples-documents.jsonl");
        for (Path p : List.of(csv, jsonl, documents)) Files.deleteIfExists(p);
        Launcher launcher = new Launcher(data, root);

        Launcher.Result r = launcher.run(600, "run", "jobs/archive-samples.yaml", "--date", "2026-02-01");

        assertThat(r.exitCode()).as(r.output()).isZero();
        assertThat(r.output()).contains("TINY").contains("COMPLETED")
                .contains("15 images, 15 done")
                .contains("archives: 4 documents, 10 pages, 1 member skipped (unknown type)");
        String folder = root.resolve("samples-archives").toUri().toString();

        List<CSVRecord> rows;
        try (Reader in = Files.newBufferedReader(csv, StandardCharsets.UTF_8)) {
            rows = CSVFormat.RFC4180.builder().setHeader().setSkipHeaderRecord(true).get().parse(in).getRecords();
        }
        Map<String, CSVRecord> byKey = rows.stream().collect(Collectors.toMap(c -> c.get("item_key"), c -> c));
        assertThat(rows).hasSize(EXPECTED.size());
        assertThat(byKey.keySet()).isEqualTo(EXPECTED.keySet());
        for (CSVRecord row : rows) {
            String key = row.get("item_key");
            String file = key.replaceAll("[!#].*", "");
            assertThat(List.of(row.get("source_uri"), row.get("member"), row.get("page"), row.get("status"))).as(key)
                    .containsExactly(folder + file, EXPECTED.get(key).get(0), EXPECTED.get(key).get(1), "done");
            // a random tiny model may answer with an empty string; what must hold is that both tasks were
            // answered (status done above) and every output carries the same answer
            assertThat(row.isMapped("text") && row.isMapped("caption")).as(key).isTrue();
        }

        List<JsonNode> records = Files.readAllLines(jsonl).stream().map(JSON::readTree).toList();
        assertThat(records).hasSize(EXPECTED.size());
        for (JsonNode rec : records) {
            String key = rec.get("item_key").asString();
            assertThat(EXPECTED).as(key).containsKey(key);
            assertThat(rec.get("source_uri").asString()).as(key).isEqualTo(folder + key.replaceAll("[!#].*", ""));
            assertThat(rec.get("member").asString()).as(key).isEqualTo(EXPECTED.get(key).get(0));
            String page = EXPECTED.get(key).get(1);
            if (page.isEmpty()) {
                assertThat(rec.get("page").isNull()).as(key + " page").isTrue();
            } else {
                assertThat(rec.get("page").asInt()).as(key).isEqualTo(Integer.parseInt(page));
            }
            assertThat(rec.get("status").asString()).as(key).isEqualTo("done");
            assertThat(rec.get("answers").get("text").asString()).as(key).isEqualTo(fromCsv(byKey.get(key).get("text")));
            assertThat(rec.get("answers").get("caption").asString()).as(key).isEqualTo(fromCsv(byKey.get(key).get("caption")));
        }

        // one record per document, its page answers in page order
        List<JsonNode> docs = Files.readAllLines(documents).stream().map(JSON::readTree).toList();
        JsonNode letter = docs.stream().filter(d -> d.get("document").asString().equals("box.zip!/letters/1903.pdf"))
                .findFirst().orElseThrow();
        assertThat(letter.get("pages").asInt()).isEqualTo(2);
        assertThat(letter.get("answers").get("text")).hasSize(2);

        Launcher.Result status = launcher.run(120, "status", "archive-samples");
        assertThat(status.exitCode()).as(status.output()).isZero();
        assertThat(status.output()).contains("archive-samples 2026-02-01: archives: 4 documents, 10 pages, 1 member skipped (unknown type)");
    }

    /** The CSV's cell with the formula guard's leading apostrophe taken off (the JSONL keeps answers as they were). */
    private static String fromCsv(String cell) {
        boolean guarded = cell.length() > 1 && cell.charAt(0) == '\'' && "=+-@\t\r".indexOf(cell.charAt(1)) >= 0;
        return guarded ? cell.substring(1) : cell;
    }
}
