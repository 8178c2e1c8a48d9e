package io.vlmbatch.inference;

import java.net.URI;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

/**
 * One server of an endpoint pool: its API root, whether it is in the pool now, and what was asked of it.
 * Requests on the wire are tracked so that taking the endpoint out aborts them (they are retried on the
 * others) instead of leaving them to wait out their timeout on a server that no longer answers.
 */
public final class Endpoint {
    private final URI base;
    private final BooleanSupplier comingBack;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicLong requests = new AtomicLong();
    private final AtomicLong errors = new AtomicLong();
    private final AtomicLong answered = new AtomicLong();
    private final AtomicLong latencyMsTotal = new AtomicLong();
    private final AtomicLong latencyMsMax = new AtomicLong();
    private final Set<CompletableFuture<?>> onTheWire = ConcurrentHashMap.newKeySet();
    private volatile boolean up = true;
    private volatile String downReason;

    /** @param comingBack true while the server is being restarted by this app (the pool then waits for it) */
    Endpoint(URI base, BooleanSupplier comingBack) {
        this.base = base;
        this.comingBack = comingBack;
    }

    public URI base() { return base; }

    /** The root URL as configured, without /v1/, for summaries and metric tags. */
    public String name() {
        String s = base.toString();
        return s.endsWith("/v1/") ? s.substring(0, s.length() - 4) : s;
    }

    public boolean up() { return up; }

    public String downReason() { return downReason; }

    boolean comingBack() { return comingBack.getAsBoolean(); }

    public int inFlight() { return inFlight.get(); }

    /** Attempts sent to this endpoint. */
    public long requests() { return requests.get(); }

    /** Attempts that failed here (no answer, 429 or 5xx). */
    public long errors() { return errors.get(); }

    /** Attempts answered (any status the client does not retry), with their latency. */
    public long answered() { return answered.get(); }

    public long latencyMsTotal() { return latencyMsTotal.get(); }

    public long latencyMsMax() { return latencyMsMax.get(); }

    void started(CompletableFuture<?> exchange) {
        requests.incrementAndGet();
        inFlight.incrementAndGet();
        onTheWire.add(exchange);
        // taken out between the choice and now: abort at once rather than wait for the timeout
        if (!up) exchange.cancel(true);
    }

    void finished(CompletableFuture<?> exchange) {
        onTheWire.remove(exchange);
        inFlight.decrementAndGet();
    }

    void answered(long ms) {
        answered.incrementAndGet();
        latencyMsTotal.addAndGet(ms);
        latencyMsMax.accumulateAndGet(ms, Math::max);
    }

    void failed() {
        errors.incrementAndGet();
    }

    /** @return true when this took it out (it was up) */
    synchronized boolean takeOut(String reason) {
        if (!up) return false;
        up = false;
        downReason = reason;
        onTheWire.forEach(f -> f.cancel(true));
        return true;
    }

    /** @return true when this put it back (it was down) */
    synchronized boolean putBack() {
        if (up) return false;
        up = true;
        return true;
    }

    /** "http://h:8000: 120 requests, 2 errors, mean 310 ms, max 2100 ms" (+ ", down" when out of the pool). */
    public String summary() {
        long n = answered();
        return name() + ": " + requests() + " requests, " + errors() + " errors"
                + (n == 0 ? "" : ", mean " + latencyMsTotal() / n + " ms, max " + latencyMsMax() + " ms")
                + (up ? "" : ", down");
    }
}
