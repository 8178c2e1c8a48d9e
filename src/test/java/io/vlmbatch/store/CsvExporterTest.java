package io.vlmbatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.db.SchemaMigrations;
import io.vlmbatch.inference.ChatResult;
import io.vlmbatch.source.SourceItem;
import io.vlmbatch.testsupport.TestPostgres;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.List;
import java.util.Map;
import org.apache.commons.csv.CSVFormat;
import org.apache.commons.csv.CSVRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;
import org.springframework.jdbc.datasource.SingleConnectionDataSource;
import org.springframework.transaction.support.TransactionTemplate;

/** CSV export from a real PostgreSQL (the embedded one), read back with an RFC 4180 parser. */
class CsvExporterTest {
    @TempDir
    static Path tmp;
    static TestPostgres pg;
    static SingleConnectionDataSource ds;
    static JdbcTemplate jdbc;

    @BeforeAll
    static void database() throws Exception {
        pg = TestPostgres.start(tmp.resolve("pg"));
        ds = new SingleConnectionDataSource(pg.jdbcUrl(), pg.user(), pg.password(), true);
        SchemaMigrations.migrate(ds);
        jdbc = new JdbcTemplate(ds);
    }

    @AfterAll
    static void stop() {
        ds.destroy();
        pg.close();
    }

    @Test
    void oneRowPerImageWithTaskStatusErrorAndMetadataColumns() throws Exception {
        RunStore runs = new RunStore(jdbc);
        WorkItemStore items = new WorkItemStore(jdbc);
        ResultStore results = new ResultStore(jdbc);
        runs.ensure(7, "csvjob", LocalDate.of(2026, 1, 1), "");
        items.insert(7, List.of(
                new SourceItem("a.jpg", "file:/x/a.jpg", Map.of("camera", "north, gate")),
                new SourceItem("b.jpg", "file:/x/b.jpg", Map.of()),
                new SourceItem("c.jpg", "file:/x/c.jpg", Map.of("camera", "süd"))));
        items.insert(7, List.of(new SourceItem("a.jpg", "file:/x/other.jpg", Map.of()))); // same key: ignored
        List<WorkItem> pending = items.pending(7, 0, Long.MAX_VALUE, 10);
        assertThat(pending).extracting(WorkItem::itemKey).containsExactly("a.jpg", "b.jpg", "c.jpg");

        long a = pending.get(0).id(), b = pending.get(1).id();
        results.upsert(a, List.of(
                new TaskOutcome("caption", new ChatResult("A \"red\" car,\nparked.\u0000", null, "m", 1, 2, 3, 1)),
                new TaskOutcome("kind", new ChatResult("photo", null, "m", 1, 1, 3, 1))));
        // upsert again (a redone chunk): replaces, never duplicates
        results.upsert(a, List.of(new TaskOutcome("kind", new ChatResult("chart", null, "m", 1, 1, 3, 2))));
        items.finish(a, ItemStatus.DONE, null, 640, 480);
        items.finish(b, ItemStatus.FAILED, "empty file (0 bytes)", null, null);
        assertThat(items.counts(7)).isEqualTo(new ItemCounts(1, 1, 1));

        Path out = tmp.resolve("out/run.csv");
        long rows = new CsvExporter(jdbc, new TransactionTemplate(new DataSourceTransactionManager(ds)))
                .export(7, List.of("caption", "kind"), out);

        assertThat(rows).isEqualTo(3);
        assertThat(Files.getPosixFilePermissions(out)).as("readable like any file the user writes")
                .contains(java.nio.file.attribute.PosixFilePermission.OTHERS_READ);
        try (var left = Files.list(out.getParent())) {
            assertThat(left).as("no temporary file left behind").containsExactly(out);
        }
        String text = Files.readString(out, StandardCharsets.UTF_8);
        assertThat(text).startsWith("item_key,source_uri,member,page,status,error,caption,kind,meta.camera\r\n");
        List<CSVRecord> records;
        try (Reader in = Files.newBufferedReader(out, StandardCharsets.UTF_8)) {
            records = CSVFormat.RFC4180.builder().setHeader().setSkipHeaderRecord(true).get().parse(in).getRecords();
        }
        assertThat(records).hasSize(3);
        assertThat(records.get(0).get("caption")).isEqualTo("A \"red\" car,\nparked.\uFFFD");
        assertThat(records.get(0).get("kind")).isEqualTo("chart");
        assertThat(records.get(0).get("meta.camera")).isEqualTo("north, gate");
        assertThat(records.get(1).get("status")).isEqualTo("failed");
        assertThat(records.get(1).get("error")).isEqualTo("empty file (0 bytes)");
        assertThat(records.get(1).get("caption")).isEmpty();
        assertThat(records.get(2).get("status")).isEqualTo("pending");
        assertThat(records.get(2).get("meta.camera")).isEqualTo("süd");
        assertThat(jdbc.queryForObject("SELECT count(*) FROM vlm_result WHERE work_item_id = ?", Long.class, a)).isEqualTo(2);
    }

    static List<CSVRecord> read(Path out) throws Exception {
        try (Reader in = Files.newBufferedReader(out, StandardCharsets.UTF_8)) {
            return CSVFormat.RFC4180.builder().setHeader().setSkipHeaderRecord(true).get().parse(in).getRecords();
        }
    }

    @Test
    void cellsASpreadsheetWouldRunAsFormulasAreNeutralisedUnlessRawIsAskedFor() throws Exception {
        RunStore runs = new RunStore(jdbc);
        WorkItemStore items = new WorkItemStore(jdbc);
        ResultStore results = new ResultStore(jdbc);
        runs.ensure(8, "formulas", LocalDate.of(2026, 1, 1), "");
        List<String> hostile = List.of("=HYPERLINK(\"http://evil.example\",\"click\")", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
                "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1");
        List<SourceItem> batch = new java.util.ArrayList<>();
        for (int i = 0; i < hostile.size(); i++) {
            batch.add(new SourceItem(hostile.get(i), "file:/x/" + i + ".jpg", Map.of("note", hostile.get(i))));
        }
        batch.add(new SourceItem("plain.jpg", "file:/x/plain.jpg", Map.of("note", "-12.5")));
        items.insert(8, batch);
        List<WorkItem> pending = items.pending(8, 0, Long.MAX_VALUE, 100);
        for (int i = 0; i < pending.size(); i++) {
            String answer = i < hostile.size() ? hostile.get(i) : "-3";
            results.upsert(pending.get(i).id(), List.of(new TaskOutcome("caption", new ChatResult(answer, null, "m", 1, 1, 3, 1))));
            items.finish(pending.get(i).id(), ItemStatus.FAILED, i < hostile.size() ? hostile.get(i) : "+1", null, null);
        }
        CsvExporter exporter = new CsvExporter(jdbc, new TransactionTemplate(new DataSourceTransactionManager(ds)));

        Path safe = tmp.resolve("out/formulas.csv");
        exporter.export(8, List.of("caption"), safe);
        List<CSVRecord> rows = read(safe);
        assertThat(rows).hasSize(hostile.size() + 1);
        for (int i = 0; i < hostile.size(); i++) {
            for (String column : List.of("item_key", "error", "caption", "meta.note")) {
                assertThat(rows.get(i).get(column)).as(column + " of row " + i).isEqualTo("'" + hostile.get(i));
            }
        }
        CSVRecord plain = rows.get(hostile.size());
        assertThat(plain.get("item_key")).isEqualTo("plain.jpg");
        assertThat(plain.get("caption")).as("a plain number stays a number").isEqualTo("-3");
        assertThat(plain.get("meta.note")).isEqualTo("-12.5");
        assertThat(plain.get("error")).isEqualTo("+1");

        Path raw = tmp.resolve("out/formulas-raw.csv");
        exporter.export(8, List.of("caption"), raw, true);
        List<CSVRecord> rawRows = read(raw);
        for (int i = 0; i < hostile.size(); i++) {
            assertThat(rawRows.get(i).get("caption")).as("raw: as stored").isEqualTo(hostile.get(i));
            assertThat(rawRows.get(i).get("item_key")).isEqualTo(hostile.get(i));
        }
    }
}
