package io.vlmbatch.archive;

/**
 * One work item found by expansion: a page, a frame, a member image, or a plain file.
 *
 * @param key     the stable item key ({@link Lineage#key})
 * @param lineage where it came from
 * @param failure why the document or member cannot be processed, found while listing (an encrypted
 *                PDF, a bomb, too many pages, a truncated archive...); null for a normal item
 */
public record ExpandedItem(String key, Lineage lineage, String failure) {

    public boolean failed() {
        return failure != null;
    }
}
