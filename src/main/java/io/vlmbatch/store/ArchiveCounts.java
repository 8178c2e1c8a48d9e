package io.vlmbatch.store;

/**
 * What a run's archives and documents came to: documents expanded into pages (a PDF, a TIFF stack, a PDF
 * inside a ZIP), their pages, and archive members skipped at discovery because they are neither an image
 * nor an expandable container (they have no work item).
 */
public record ArchiveCounts(long documents, long pages, long membersSkipped) {

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
