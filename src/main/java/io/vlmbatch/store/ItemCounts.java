package io.vlmbatch.store;

/**
 * How far a run is: items done (every task answered), failed (with a reason) and still pending; reused:
 * those of the done items whose every answer was copied from the ledger (no request sent).
 */
public record ItemCounts(long done, long failed, long pending, long reused) {
    public ItemCounts(long done, long failed, long pending) {
        this(done, failed, pending, 0);
    }

    public long total() { return done + failed + pending; }

    public long finished() { return done + failed; }

    /** Done items for which at least one request was sent. */
    public long asked() { return done - reused; }
}
