package io.vlmbatch.source;

import java.io.IOException;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import org.apache.commons.csv.CSVFormat;
import org.apache.commons.csv.CSVParser;
import org.apache.commons.csv.CSVRecord;
import org.apache.commons.csv.DuplicateHeaderMode;

/** RFC 4180 CSV with a header row; a leading UTF-8 byte-order mark (as Excel writes) is ignored. */
final class CsvManifestReader {

    private static final CSVFormat FORMAT = CSVFormat.RFC4180.builder()
            .setHeader()
            .setSkipHeaderRecord(true)
            .setIgnoreEmptyLines(true)
            .setTrim(true)
            .setDuplicateHeaderMode(DuplicateHeaderMode.DISALLOW)
            .get();

    private CsvManifestReader() {}

    static void read(Reader reader, String name, Consumer<List<String>> header, Consumer<ManifestRow> rows)
            throws IOException {
        CSVParser parser;
        try {
            parser = FORMAT.parse(Utf8Bom.skip(reader));
        } catch (IllegalArgumentException | UncheckedIOException e) {
            throw new SourceException(name + " line 1: bad CSV header: " + e.getMessage(), e);
        }
        try (parser) {
            List<String> names = parser.getHeaderNames();
            if (names.isEmpty()) {
                throw new SourceException(name + ": empty manifest (no header row)");
            }
            header.accept(names);
            Iterator<CSVRecord> records = parser.iterator();
            while (true) {
                long startLine = parser.getCurrentLineNumber() + 1;
                CSVRecord record;
                try {
                    if (!records.hasNext()) {
                        break;
                    }
                    record = records.next();
                } catch (UncheckedIOException | IllegalStateException e) {
                    throw new SourceException(name + " line " + startLine + ": malformed CSV: "
                            + rootMessage(e), e);
                }
                // Blank lines are skipped by the parser; count the record from its last line back.
                long line = parser.getCurrentLineNumber() - lineBreaksInside(record);
                if (record.size() != names.size()) {
                    throw new SourceException(name + " line " + line + ": " + record.size()
                            + " fields but the header has " + names.size());
                }
                Map<String, String> fields = new LinkedHashMap<>();
                for (int i = 0; i < names.size(); i++) {
                    fields.put(names.get(i), record.get(i));
                }
                rows.accept(new ManifestRow(line, fields));
            }
        }
    }

    private static long lineBreaksInside(CSVRecord record) {
        long n = 0;
        for (String value : record) {
            n += value.chars().filter(c -> c == '\n').count();
        }
        return n;
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null) {
            t = t.getCause();
        }
        return t.getMessage();
    }
}
