package io.vlmbatch.store;

import java.util.Arrays;
import java.util.List;

/** Where one image of a run stands (vlm_work_item.status holds the lowercase name). */
public enum ItemStatus {
    PENDING, DONE, FAILED;

    /** The value stored in the database and shown by the API. */
    public String sql() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    public static List<String> names() {
        return Arrays.stream(values()).map(ItemStatus::sql).toList();
    }

    /** The status named by outside input; a clear error for anything else. */
    public static ItemStatus parse(String text) {
        for (ItemStatus s : values()) {
            if (s.sql().equals(text)) return s;
        }
        throw new IllegalArgumentException("status must be one of " + names());
    }
}
