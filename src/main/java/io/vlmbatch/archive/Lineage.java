package io.vlmbatch.archive;

/**
 * Where a page or image came from.
 *
 * @param sourceUri the file as the source listed it ({@code file:} or {@code s3://} URI)
 * @param member    the path inside the container, nested levels joined by {@code !/}; empty when none
 * @param page      1-based page or frame number; null for a single image
 */
public record Lineage(String sourceUri, String member, Integer page) {

    /** Separates a container from the path of a member inside it, in members and keys. */
    public static final String MEMBER_SEPARATOR = "!/";

    public Lineage {
        member = member == null ? "" : member;
        if (page != null && page < 1) {
            throw new IllegalArgumentException("page numbers start at 1, got " + page);
        }
    }

    /**
     * The item key: the source's key for the file, then {@code !/member}, then {@code #pN}; e.g.
     * {@code scans/box1.zip!/letters/1903.pdf#p2}. Stable across runs because it is built only from
     * names and page numbers.
     */
    public String key(String sourceKey) {
        StringBuilder b = new StringBuilder(sourceKey);
        if (!member.isEmpty()) {
            b.append(MEMBER_SEPARATOR).append(member);
        }
        if (page != null) {
            b.append("#p").append(page);
        }
        return b.toString();
    }

    Lineage child(String memberName) {
        return new Lineage(sourceUri, member.isEmpty() ? memberName : member + MEMBER_SEPARATOR + memberName, null);
    }

    Lineage page(int number) {
        return new Lineage(sourceUri, member, number);
    }
}
