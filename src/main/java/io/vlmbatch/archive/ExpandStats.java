package io.vlmbatch.archive;

/** What an expansion found and left out, for the run summary. Not thread-safe. */
public final class ExpandStats {

    private long items;
    private long pages;
    private long documents;
    private long failed;
    private long skippedUnknown;
    private long skippedNotFile;
    private long skippedDuplicate;

    /** Work items produced, failed ones included. */
    public long items() {
        return items;
    }

    /** Items that are a page or frame of a multi-page document. */
    public long pages() {
        return pages;
    }

    /** Multi-page documents (PDF, TIFF) expanded into pages. */
    public long documents() {
        return documents;
    }

    /** Items recorded as failed at discovery (encrypted PDF, bomb, too many pages, truncated archive...). */
    public long failed() {
        return failed;
    }

    /** Archive members that are neither an image nor an expandable container. */
    public long skippedUnknown() {
        return skippedUnknown;
    }

    /** Links, devices and other entries that are not regular files. */
    public long skippedNotFile() {
        return skippedNotFile;
    }

    /** Members whose (cleaned) name repeats an earlier one in the same archive. */
    public long skippedDuplicate() {
        return skippedDuplicate;
    }

    void item(boolean page, boolean failure) {
        items++;
        if (page) {
            pages++;
        }
        if (failure) {
            failed++;
        }
    }

    void document() {
        documents++;
    }

    void unknown() {
        skippedUnknown++;
    }

    void notFile() {
        skippedNotFile++;
    }

    void duplicate() {
        skippedDuplicate++;
    }

    public void add(ExpandStats o) {
        items += o.items;
        pages += o.pages;
        documents += o.documents;
        failed += o.failed;
        skippedUnknown += o.skippedUnknown;
        skippedNotFile += o.skippedNotFile;
        skippedDuplicate += o.skippedDuplicate;
    }

    @Override
    public String toString() {
        return items + " items (" + pages + " pages of " + documents + " documents, " + failed + " failed); skipped: "
                + skippedUnknown + " of unknown type, " + skippedNotFile + " not regular files, "
                + skippedDuplicate + " duplicate names";
    }
}
