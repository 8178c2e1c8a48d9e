package io.vlmbatch.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.RepoPaths;
import io.vlmbatch.testsupport.RunDatabase;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.apache.commons.csv.CSVFormat;
import org.apache.commons.csv.CSVRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's run command, end to end: jobs/samples.yaml through the packaged launcher, with the
 * embedded PostgreSQL and the embedded vlmserve on the tiny random model.
 */
class SamplesJobIT {
    private static final Set<String> LABELS = Set.of("photo", "document", "chart", "screenshot");

    @Test
    void everySampleGetsEveryTaskAndTheCsvHasOneRowPerImage(@TempDir Path data) throws Exception {
        Path root = RepoPaths.root();
        long images;
        try (Stream<Path> files = Files.list(root.resolve("samples"))) {
            images = files.filter(p -> p.getFileName().toString().toLowerCase().matches(".*\\.(jpe?g|png|webp|tiff?|bmp|gif)")).count();
        }
        assertThat(images).as("images in samples/").isGreaterThan(0);
        Path csv = root.resolve("out/samples.csv");
        Files.deleteIfExists(csv);

        Launcher.Result r = new Launcher(data, root).run(600, "run", "jobs/samples.yaml", "--date", "2026-01-01");

        assertThat(r.exitCode()).as(r.output()).isZero();
        assertThat(r.output()).contains("TINY").contains("RANDOM TEXT");
        try (RunDatabase db = new RunDatabase(data)) {
            long runId = db.runId("samples");
            assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ?", runId)).isEqualTo(images);
            assertThat(db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId)).isEqualTo(images);
            assertThat(db.count("""
                    SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                    WHERE w.run_id = ? AND r.status = 'done' AND r.answer IS NOT NULL""", runId)).isEqualTo(images * 3);
        }
        List<CSVRecord> rows;
        try (Reader in = Files.newBufferedReader(csv, StandardCharsets.UTF_8)) {
            rows = CSVFormat.RFC4180.builder().setHeader().setSkipHeaderRecord(true).get().parse(in).getRecords();
        }
        assertThat(rows).hasSize((int) images);
        for (CSVRecord row : rows) {
            assertThat(row.get("status")).as(row.get("item_key")).isEqualTo("done");
            assertThat(LABELS).as("kind of " + row.get("item_key")).contains(row.get("kind"));
        }

        // Asking for the same run again (a cron firing twice) succeeds without redoing anything.
        Launcher.Result again = new Launcher(data, root).run(120, "run", "jobs/samples.yaml", "--date", "2026-01-01");
        assertThat(again.exitCode()).as(again.output()).isZero();
        assertThat(again.output()).contains("already completed");
        try (RunDatabase db = new RunDatabase(data)) {
            assertThat(db.count("SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id WHERE w.run_id = ?",
                    db.runId("samples"))).isEqualTo(images * 3);
        }
    }
}
