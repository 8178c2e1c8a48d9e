package io.vlmbatch.archive;

import java.util.EnumSet;
import java.util.Set;

/**
 * What to expand and the limits that keep hostile input harmless.
 *
 * @param expand            container types opened into pages or members; empty: none
 * @param maxPages          a PDF or TIFF with more pages than this is refused as a whole
 * @param maxDepth          containers nested deeper than this (the listed file is depth 1) are refused
 * @param maxMembers        an archive with more entries than this is refused (bomb guard)
 * @param maxTotalBytes     an archive whose members add up to more than this uncompressed is refused
 * @param maxRatio          a ZIP member inflating more than this many times its compressed size is refused
 * @param ratioFloorBytes   the ratio is only checked on members larger than this (tiny files compress well)
 * @param maxMemberBytes    a member read whole (an image) may not be larger than this
 */
public record ExpandSpec(Set<Container> expand, int maxPages, int maxDepth, long maxMembers, long maxTotalBytes,
                         double maxRatio, long ratioFloorBytes, long maxMemberBytes) {

    public static final int DEFAULT_MAX_PAGES = 5000;
    public static final int DEFAULT_MAX_DEPTH = 4;
    public static final long DEFAULT_MAX_MEMBERS = 100_000;
    public static final long DEFAULT_MAX_TOTAL_BYTES = 64L << 30;
    public static final double DEFAULT_MAX_RATIO = 200;
    public static final long DEFAULT_RATIO_FLOOR_BYTES = 1L << 20;
    public static final long DEFAULT_MAX_MEMBER_BYTES = 256L << 20;

    public ExpandSpec {
        expand = expand == null || expand.isEmpty() ? EnumSet.noneOf(Container.class) : EnumSet.copyOf(expand);
        positive("maxPages", maxPages);
        positive("maxDepth", maxDepth);
        positive("maxMembers", maxMembers);
        positive("maxTotalBytes", maxTotalBytes);
        positive("maxMemberBytes", maxMemberBytes);
        if (!(maxRatio >= 1)) {
            throw new IllegalArgumentException("maxRatio must be at least 1, got " + maxRatio);
        }
        if (ratioFloorBytes < 0) {
            throw new IllegalArgumentException("ratioFloorBytes must not be negative, got " + ratioFloorBytes);
        }
    }

    public static ExpandSpec defaults() {
        return new ExpandSpec(Container.all(), DEFAULT_MAX_PAGES, DEFAULT_MAX_DEPTH, DEFAULT_MAX_MEMBERS,
                DEFAULT_MAX_TOTAL_BYTES, DEFAULT_MAX_RATIO, DEFAULT_RATIO_FLOOR_BYTES, DEFAULT_MAX_MEMBER_BYTES);
    }

    public ExpandSpec withExpand(Set<Container> types) {
        return new ExpandSpec(types, maxPages, maxDepth, maxMembers, maxTotalBytes, maxRatio, ratioFloorBytes, maxMemberBytes);
    }

    public ExpandSpec withMaxPages(int value) {
        return new ExpandSpec(expand, value, maxDepth, maxMembers, maxTotalBytes, maxRatio, ratioFloorBytes, maxMemberBytes);
    }

    public ExpandSpec withMaxDepth(int value) {
        return new ExpandSpec(expand, maxPages, value, maxMembers, maxTotalBytes, maxRatio, ratioFloorBytes, maxMemberBytes);
    }

    public ExpandSpec withBombLimits(long members, long totalBytes, double ratio) {
        return new ExpandSpec(expand, maxPages, maxDepth, members, totalBytes, ratio, ratioFloorBytes, maxMemberBytes);
    }

    public boolean expands(Format format) {
        Container c = format.container();
        return c != null && expand.contains(c);
    }

    private static void positive(String name, long value) {
        if (value < 1) {
            throw new IllegalArgumentException(name + " must be positive, got " + value);
        }
    }
}
