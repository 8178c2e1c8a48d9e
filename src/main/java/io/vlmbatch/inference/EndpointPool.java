package io.vlmbatch.inference;

import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The servers a client spreads its requests over. A request goes to the endpoint with the fewest requests
 * in flight, except that requests about an image already in flight go where that image went (the server
 * then reuses the image's prefix). An endpoint that fails to connect, or fails its health check twice in
 * a row, is taken out (its requests on the wire are aborted and retried on the others) and put back when
 * it answers its health check again. While no endpoint is in, requests wait for one; once none has been
 * in for {@code downAfter} (not counting a server that this app is restarting), every request fails at
 * once: the pool is declared down after a bounded time instead of after every request has spent its retries.
 */
final class EndpointPool implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(EndpointPool.class);
    private static final Duration CHECK_EVERY = Duration.ofSeconds(1);
    /** How often an endpoint in the pool is checked, in CHECK_EVERY ticks. */
    private static final int UP_CHECK_TICKS = 3;

    /** One GET /v1/models of one endpoint; false = no answer or not 200. */
    interface Probe {
        boolean healthy(Endpoint e);
    }

    private record Pin(Endpoint endpoint, int requests) {}

    private final List<Endpoint> endpoints;
    private final Duration downAfter;
    private final Probe probe;
    private final Map<Object, Pin> pins = new ConcurrentHashMap<>();
    private final Map<Endpoint, Integer> failedChecks = new ConcurrentHashMap<>();
    private final Object change = new Object();
    private final ScheduledExecutorService checker =
            Executors.newSingleThreadScheduledExecutor(Thread.ofVirtual().name("endpoint-health").factory());
    private volatile long noneUpSince = -1;
    private long ticks;

    EndpointPool(List<Endpoint> endpoints, Duration downAfter, Probe probe) {
        this.endpoints = List.copyOf(endpoints);
        this.downAfter = downAfter;
        this.probe = probe;
        checker.scheduleWithFixedDelay(this::check, CHECK_EVERY.toMillis(), CHECK_EVERY.toMillis(), TimeUnit.MILLISECONDS);
    }

    List<Endpoint> endpoints() { return endpoints; }

    /**
     * An endpoint for one attempt: where the key's image went if it is still in, else the one with fewest
     * requests in flight, preferring one other than {@code failedBefore}. Waits while none is in.
     * Call {@link #release(Object)} with the same key after the attempt.
     *
     * @param key identifies the image (null: no affinity)
     * @throws InferenceUnavailableException when the pool is declared down
     */
    Endpoint acquire(Object key, Endpoint failedBefore, String what) throws InterruptedException {
        while (true) {
            Endpoint chosen;
            if (key == null) {
                chosen = leastBusy(failedBefore);
            } else {
                Pin pin = pins.compute(key, (k, p) -> {
                    if (p != null && p.endpoint().up() && p.endpoint() != failedBefore) return new Pin(p.endpoint(), p.requests() + 1);
                    Endpoint e = leastBusy(failedBefore);
                    return e == null ? p : new Pin(e, (p == null ? 0 : p.requests()) + 1);
                });
                chosen = pin != null && pin.endpoint().up() ? pin.endpoint() : null;
                if (chosen == null && pin != null) pins.computeIfPresent(key, (k, p) -> p.requests() <= 0 ? null : p);
            }
            if (chosen != null) return chosen;
            checkGivenUp(what);
            synchronized (change) {
                change.wait(200);
            }
        }
    }

    void release(Object key) {
        if (key != null) pins.computeIfPresent(key, (k, p) -> p.requests() <= 1 ? null : new Pin(p.endpoint(), p.requests() - 1));
    }

    private Endpoint leastBusy(Endpoint avoid) {
        Predicate<Endpoint> in = Endpoint::up;
        Comparator<Endpoint> order = Comparator.comparingInt(Endpoint::inFlight);
        Endpoint other = endpoints.stream().filter(in).filter(e -> e != avoid).min(order).orElse(null);
        return other != null ? other : endpoints.stream().filter(in).min(order).orElse(null);
    }

    private void checkGivenUp(String what) {
        long since = noneUpSince;
        if (since < 0 || endpoints.stream().anyMatch(Endpoint::comingBack)) return;
        long downMs = (System.nanoTime() - since) / 1_000_000;
        if (downMs >= downAfter.toMillis()) {
            throw new InferenceUnavailableException(what + ": no inference endpoint answered for " + downAfter.toSeconds()
                    + " s (" + endpoints.stream().map(e -> e.name() + ": " + e.downReason()).collect(Collectors.joining("; ")) + ")", null);
        }
    }

    /** An attempt could not reach the endpoint (refused, reset): out until its health check passes. */
    void takeOut(Endpoint e, String reason) {
        if (e.takeOut(reason)) {
            failedChecks.remove(e);
            log.warn("inference endpoint {} taken out of the pool: {}", e.name(), reason);
            changed();
        }
    }

    private void putBack(Endpoint e) {
        if (e.putBack()) {
            log.info("inference endpoint {} is healthy again, back in the pool", e.name());
            changed();
        }
    }

    private void changed() {
        boolean anyUp = endpoints.stream().anyMatch(Endpoint::up);
        if (anyUp) noneUpSince = -1;
        else if (noneUpSince < 0) noneUpSince = System.nanoTime();
        synchronized (change) {
            change.notifyAll();
        }
    }

    private void check() {
        try {
            long tick = ticks++;
            // side by side: one server that hangs must not delay the checks of the others
            Map<Endpoint, Thread> probes = new java.util.LinkedHashMap<>();
            Map<Endpoint, Boolean> results = new ConcurrentHashMap<>();
            for (Endpoint e : endpoints) {
                if (e.up() && tick % UP_CHECK_TICKS != 0) continue;
                probes.put(e, Thread.ofVirtual().start(() -> results.put(e, probe.healthy(e))));
            }
            for (var entry : probes.entrySet()) {
                entry.getValue().join();
                Endpoint e = entry.getKey();
                boolean ok = results.getOrDefault(e, false);
                if (ok) {
                    failedChecks.remove(e);
                    putBack(e);
                } else if (e.up() && failedChecks.merge(e, 1, Integer::sum) >= 2) {
                    takeOut(e, "no answer to two health checks in a row");
                }
            }
            // a server being restarted does not count towards the pool's time without endpoints
            if (noneUpSince >= 0 && endpoints.stream().anyMatch(Endpoint::comingBack)) noneUpSince = System.nanoTime();
        } catch (RuntimeException ex) {
            log.debug("endpoint health check failed: {}", ex.toString());
        } catch (InterruptedException closing) {
            Thread.currentThread().interrupt();
        }
    }

    /** "url: N requests, ...; url: ..." */
    String summary() {
        return endpoints.stream().map(Endpoint::summary).collect(Collectors.joining("; "));
    }

    @Override
    public void close() {
        checker.shutdownNow();
    }
}
