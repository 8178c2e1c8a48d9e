package io.vlmbatch.store;

/**
 * How far a run is: items done (every task answered), failed (with a reason) and still pending; reused:
 * those of the done items whose every answer was copied from the ledger (no request sent).
 */
public record ItemCounts(long done, long failed, long pending, long reused) {
    public ItemCounts(long done, long failed, long pending) {
        this(done, failed, pending, 0);
    }

    /**
     * The one query of a run's per-status item counts, to join after FROM: it adds the columns c.done,
     * c.failed, c.pending and c.reused (zeros for a run without items, or a null run id).
     */
    public static String join(String runIdColumn) {
        return """
                LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE w.status = 'done') AS done,
                                          count(*) FILTER (WHERE w.status = 'failed') AS failed,
                                          count(*) FILTER (WHERE w.status = 'pending') AS pending,
                                          count(*) FILTER (WHERE w.status = 'done' AND w.reused) AS reused
                                   FROM vlm_work_item w WHERE w.run_id = %s) c ON TRUE""".formatted(runIdColumn);
    }

    public long total() { return done + failed + pending; }

    public long finished() { return done + failed; }

    /** Done items for which at least one request was sent. */
    public long asked() { return done - reused; }
}
