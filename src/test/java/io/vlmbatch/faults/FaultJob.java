package io.vlmbatch.faults;

import io.vlmbatch.testsupport.RunDatabase;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** The experiments' job: three tasks over a source, reuse off (every result is asked), and what the database holds of it. */
final class FaultJob {
    static final List<String> TASKS = List.of("caption", "text", "kind");

    private FaultJob() {}

    static Path write(Path dir, String name, String source, String inference, int chunkSize, int partitions) throws IOException {
        Path file = dir.resolve(name + ".yaml");
        Files.writeString(file, """
                name: %s
                source: %s
                tasks:
                  - { name: caption, template: describe, max_tokens: 8 }
                  - { name: text, template: ocr, max_tokens: 8 }
                  - { name: kind, template: classify, labels: [photo, document, chart] }
                output: { csv: "out/%s.csv" }
                inference: { %s }
                run: { chunk_size: %d, partitions: %d, reuse: false }
                """.formatted(name, source, name, inference, chunkSize, partitions));
        return file;
    }

    /** Done results of the job's latest run, keyed "work item/task", with the row version (xmin) each was stored as. */
    static Map<String, String> doneResults(RunDatabase db, String job) {
        Map<String, String> out = new HashMap<>();
        try {
            Long runId = db.runId(job);
            if (runId == null) return out;
            for (Map<String, Object> r : db.rows("""
                    SELECT r.work_item_id, r.task, r.xmin::text AS version FROM vlm_result r
                    JOIN vlm_work_item w ON w.id = r.work_item_id WHERE w.run_id = ? AND r.status = 'done'""", runId)) {
                out.put(r.get("work_item_id") + "/" + r.get("task"), (String) r.get("version"));
            }
        } catch (RuntimeException tablesNotThereYet) {
            // before the first migration ran
        }
        return out;
    }

    static long doneCount(RunDatabase db, String job) {
        try {
            Long runId = db.runId(job);
            return runId == null ? 0 : db.count("""
                    SELECT count(*) FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                    WHERE w.run_id = ? AND r.status = 'done'""", runId);
        } catch (RuntimeException tablesNotThereYet) {
            return 0;
        }
    }

    /** Records of an exported CSV (answers may hold line breaks, so lines are not records). */
    static long csvRows(Path csv) throws IOException {
        try (var in = Files.newBufferedReader(csv);
             var parser = org.apache.commons.csv.CSVFormat.RFC4180.builder().setHeader().setSkipHeaderRecord(true).get().parse(in)) {
            return parser.stream().count();
        }
    }

    /** Client retries the app logged: a retried request may have been answered too, so it is counted apart. */
    static long retries(Path log) throws IOException {
        if (!Files.exists(log)) return 0;
        return Files.readAllLines(log).stream().filter(l -> l.contains("/v1/chat/completions failed") && l.contains(", retry ")).count();
    }
}
