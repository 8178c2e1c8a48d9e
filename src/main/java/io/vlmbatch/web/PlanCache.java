package io.vlmbatch.web;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.Supplier;
import org.springframework.http.HttpStatus;

/**
 * Plans of the job pages: a plan lists the job's whole source and hashes every item, so at most one is
 * computed per job at a time. A request for the date being computed waits for that computation and gets
 * its result; a request for another date of that job is refused (409) until it ends, so that a page
 * cannot stack computations of one source. The last result of each job and date is kept for
 * {@code keep}, so reloads and open tabs get it back without listing the source again. Failures are not
 * kept: asking again computes again.
 */
final class PlanCache<V> {
    /** A computed plan, when it was computed and how long it took. */
    record Computed<V>(V value, Instant computedAt, long computedMillis) {}

    private record Key(String job, LocalDate date) {}

    /** A computation under way: its date and its future result, shared by every request for that date. */
    private record Running<V>(LocalDate date, Instant startedAt, CompletableFuture<Computed<V>> result) {}

    private final Duration keep;
    private final Clock clock;
    private final Map<String, Running<V>> running = new HashMap<>();
    private final Map<Key, Computed<V>> kept = new HashMap<>();

    PlanCache(Duration keep, Clock clock) {
        if (keep.isNegative()) throw new IllegalArgumentException("the time a plan is kept must not be negative: " + keep);
        this.keep = keep;
        this.clock = clock;
    }

    Duration keep() {
        return keep;
    }

    /**
     * The plan of {@code job} for {@code date}: the kept one while it is fresh, else the one being computed
     * for that date, else computed now by {@code compute} on the calling thread.
     *
     * @throws ApiException 409 while a plan of another date of this job is being computed; whatever
     *                      {@code compute} threw (every waiter gets the same)
     */
    Computed<V> get(String job, LocalDate date, Supplier<V> compute) {
        Key key = new Key(job, date);
        CompletableFuture<Computed<V>> mine;
        CompletableFuture<Computed<V>> theirs = null;
        synchronized (this) {
            Instant now = clock.instant();
            kept.values().removeIf(c -> !fresh(c, now));
            Computed<V> done = kept.get(key);
            if (done != null) return done;
            Running<V> r = running.get(job);
            if (r != null && !r.date().equals(date)) {
                throw new ApiException(HttpStatus.CONFLICT, "the plan of " + job + " for " + r.date() + " is being computed (started "
                        + Duration.between(r.startedAt(), now).toSeconds() + " s ago); ask for " + date + " once it is done");
            }
            if (r != null) {
                theirs = r.result();
                mine = null;
            } else {
                mine = new CompletableFuture<>();
                running.put(job, new Running<>(date, now, mine));
            }
        }
        if (theirs != null) return await(theirs);
        return computeInto(mine, key, compute);
    }

    private Computed<V> computeInto(CompletableFuture<Computed<V>> result, Key key, Supplier<V> compute) {
        Instant started = clock.instant();
        long t0 = System.nanoTime();
        try {
            Computed<V> c = new Computed<>(compute.get(), started, (System.nanoTime() - t0) / 1_000_000);
            synchronized (this) {
                running.remove(key.job());
                kept.put(key, c);
            }
            result.complete(c);
            return c;
        } catch (RuntimeException | Error e) {
            synchronized (this) {
                running.remove(key.job());
            }
            result.completeExceptionally(e);
            throw e;
        }
    }

    private static <V> Computed<V> await(CompletableFuture<Computed<V>> result) {
        try {
            return result.join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            if (e.getCause() instanceof Error err) throw err;
            throw e;
        }
    }

    private boolean fresh(Computed<V> c, Instant now) {
        return c.computedAt().plusMillis(c.computedMillis()).plus(keep).isAfter(now);
    }
}
