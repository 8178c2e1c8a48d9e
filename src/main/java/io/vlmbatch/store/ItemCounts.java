package io.vlmbatch.store;

/** How far a run is: items done (every task answered), failed (with a reason) and still pending. */
public record ItemCounts(long done, long failed, long pending) {
    public long total() { return done + failed + pending; }

    public long finished() { return done + failed; }
}
