package io.vlmbatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.db.EmbeddedPostgresServer;
import io.vlmbatch.db.SchemaMigrations;
import io.vlmbatch.inference.ChatResult;
import io.vlmbatch.source.SourceItem;
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
    static EmbeddedPostgresServer pg;
    static SingleConnectionDataSource ds;
    static JdbcTemplate jdbc;

    @BeforeAll
    static void database() throws Exception {
        pg = EmbeddedPostgresServer.startOrJoin(tmp.resolve("pg"));
        ds = new SingleConnectionDataSource(pg.jdbcUrl(), pg.user(), "", true);
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
        items.finish(a, "done", null, 640, 480);
        items.finish(b, "failed", "empty file (0 bytes)", null, null);
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
}
