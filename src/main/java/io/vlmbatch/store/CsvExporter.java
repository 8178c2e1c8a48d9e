package io.vlmbatch.store;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.apache.commons.csv.CSVFormat;
import org.apache.commons.csv.CSVPrinter;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.transaction.support.TransactionTemplate;
import tools.jackson.core.type.TypeReference;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;

/**
 * Writes a run's results as CSV (RFC 4180, UTF-8): one row per image, page or archive member in
 * discovery order, columns item_key, source_uri, member, page, status, error, one column per task (the raw answer), then meta.&lt;field&gt; for each
 * metadata field. Read from the database, so the file always matches what is stored; written whole or
 * not at all ({@link AtomicFileWriter}).
 *
 * Answers, file names and metadata come from outside: a cell a spreadsheet would run as a formula
 * (one starting with =, +, -, @, a tab or a carriage return) gets a leading single quote, as OWASP
 * advises for CSV injection, unless it is a plain number. The job file's `output.csv_raw: true` writes
 * every cell as stored instead, for programs that read the CSV.
 */
public class CsvExporter {
    private static final ObjectMapper JSON = JsonMapper.builder().build();
    private static final TypeReference<Map<String, String>> STRING_MAP = new TypeReference<>() {};

    private final JdbcTemplate jdbc;
    private final TransactionTemplate tx;

    public CsvExporter(JdbcTemplate jdbc, TransactionTemplate tx) {
        this.jdbc = jdbc;
        this.tx = tx;
    }

    private static final java.util.regex.Pattern PLAIN_NUMBER = java.util.regex.Pattern.compile("[+-]?\\d+(\\.\\d+)?([eE][+-]?\\d+)?");

    /** The cell as a spreadsheet will show it, never run it. */
    static String neutralised(String cell) {
        if (cell.isEmpty() || "=+-@\t\r".indexOf(cell.charAt(0)) < 0 || PLAIN_NUMBER.matcher(cell).matches()) return cell;
        return "'" + cell;
    }

    /** With formula-like cells neutralised; @return the number of rows written (= images of the run) */
    public long export(long runId, List<String> tasks, Path out) throws IOException {
        return export(runId, tasks, out, false);
    }

    /** @param raw every cell exactly as stored (output.csv_raw); @return the number of rows written (= images of the run) */
    public long export(long runId, List<String> tasks, Path out, boolean raw) throws IOException {
        List<String> metaKeys = new ArrayList<>(new TreeSet<>(jdbc.queryForList(
                "SELECT DISTINCT jsonb_object_keys(metadata) FROM vlm_work_item WHERE run_id = ?", String.class, runId)));
        List<String> header = new ArrayList<>(List.of("item_key", "source_uri", "member", "page", "status", "error"));
        header.addAll(tasks);
        metaKeys.forEach(k -> header.add("meta." + k));

        return AtomicFileWriter.write(out, w -> {
            long[] rows = {0};
            CSVPrinter csv = new CSVPrinter(w, CSVFormat.RFC4180.builder().setHeader(header.toArray(String[]::new)).get());
            // A cursor (fetch size inside a transaction) keeps memory flat for million-row runs.
            tx.executeWithoutResult(status -> jdbc.query(con -> {
                var ps = con.prepareStatement("""
                        SELECT w.item_key, w.uri, w.status, w.error, w.metadata::text,
                               coalesce(jsonb_object_agg(r.task, coalesce(r.answer, '')) FILTER (WHERE r.task IS NOT NULL), '{}')::text,
                               w.member, w.page
                        FROM vlm_work_item w LEFT JOIN vlm_result r ON r.work_item_id = w.id
                        WHERE w.run_id = ? GROUP BY w.id ORDER BY w.id""");
                ps.setLong(1, runId);
                ps.setFetchSize(1000);
                return ps;
            }, rs -> {
                Map<String, String> meta = JSON.readValue(rs.getString(5), STRING_MAP);
                Map<String, String> answers = JSON.readValue(rs.getString(6), STRING_MAP);
                List<String> row = new ArrayList<>(List.of(rs.getString(1), rs.getString(2), rs.getString(7),
                        rs.getObject(8) == null ? "" : rs.getString(8), rs.getString(3),
                        rs.getString(4) == null ? "" : rs.getString(4)));
                tasks.forEach(t -> row.add(answers.getOrDefault(t, "")));
                metaKeys.forEach(k -> row.add(meta.getOrDefault(k, "")));
                try {
                    csv.printRecord(raw ? row : row.stream().map(CsvExporter::neutralised).toList());
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                rows[0]++;
            }));
            csv.flush();
            return rows[0];
        });
    }
}
