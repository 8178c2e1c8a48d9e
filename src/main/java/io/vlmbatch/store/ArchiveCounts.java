package io.vlmbatch.store;

import org.springframework.jdbc.core.JdbcTemplate;

/**
 * What a run's archives and documents came to: documents expanded into pages (a PDF, a TIFF stack, a PDF
 * inside a ZIP), their pages, and archive members skipped at discovery because they are neither an image
 * nor an expandable container (they have no work item).
 */
public record ArchiveCounts(long documents, long pages, long membersSkipped) {

    /** The one query of a run's counts (zeros for a run without documents, or no such run). */
    public static ArchiveCounts of(JdbcTemplate jdbc, long runId) {
        return jdbc.queryForObject("""
                SELECT (SELECT count(DISTINCT (w.uri, w.member)) FROM vlm_work_item w WHERE w.run_id = q.run_id AND w.page IS NOT NULL),
                       (SELECT count(*) FROM vlm_work_item w WHERE w.run_id = q.run_id AND w.page IS NOT NULL),
                       coalesce(r.members_skipped, 0)
                FROM (SELECT ?::bigint AS run_id) q LEFT JOIN vlm_run r ON r.run_id = q.run_id""",
                (rs, n) -> new ArchiveCounts(rs.getLong(1), rs.getLong(2), rs.getLong(3)), runId);
    }

    /** A run over loose images only has nothing to say here. */
    public boolean any() {
        return documents > 0 || membersSkipped > 0;
    }

    /** The run summary's line, also printed by {@code status}. */
    public String line() {
        return "archives: " + documents + (documents == 1 ? " document, " : " documents, ") + pages
                + (pages == 1 ? " page, " : " pages, ") + membersSkipped + (membersSkipped == 1 ? " member" : " members")
                + " skipped (unknown type)";
    }
}
