package io.vlmbatch.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.springframework.http.HttpStatus;

/**
 * The job pages' plans on real threads: one computation per job at a time, shared by the requests for its
 * date, another date refused while it runs, the result kept for the set time and failures not kept.
 */
class PlanCacheTest {
    private static final LocalDate D1 = LocalDate.of(2026, 3, 1), D2 = LocalDate.of(2026, 3, 2);

    /** A clock the test moves forward. */
    static final class SteppedClock extends Clock {
        volatile Instant now = Instant.parse("2026-03-01T10:00:00Z");

        @Override public ZoneId getZone() { return ZoneOffset.UTC; }
        @Override public Clock withZone(ZoneId zone) { return this; }
        @Override public Instant instant() { return now; }
    }

    final ExecutorService pool = Executors.newFixedThreadPool(4);
    final SteppedClock clock = new SteppedClock();
    final PlanCache<String> cache = new PlanCache<>(Duration.ofSeconds(60), clock);

    @AfterEach
    void stop() {
        pool.shutdownNow();
    }

    @Test
    void requestsForTheDateBeingComputedShareOneComputationAndAnotherDateIsRefused() throws Exception {
        AtomicInteger computations = new AtomicInteger();
        CountDownLatch started = new CountDownLatch(1), release = new CountDownLatch(1);
        Future<PlanCache.Computed<String>> first = pool.submit(() -> cache.get("gallery", D1, () -> {
            computations.incrementAndGet();
            started.countDown();
            await(release);
            return "plan of D1";
        }));
        assertThat(started.await(10, TimeUnit.SECONDS)).isTrue();
        Future<PlanCache.Computed<String>> second = pool.submit(() -> cache.get("gallery", D1, () -> {
            computations.incrementAndGet();
            return "computed twice";
        }));
        assertThatThrownBy(() -> cache.get("gallery", D2, () -> "other date"))
                .isInstanceOfSatisfying(ApiException.class, e -> {
                    assertThat(e.status()).isEqualTo(HttpStatus.CONFLICT);
                    assertThat(e.getMessage()).isEqualTo("the plan of gallery for 2026-03-01 is being computed (started 0 s ago); "
                            + "ask for 2026-03-02 once it is done");
                });
        assertThat(cache.get("other-job", D2, () -> "another job's plan").value()).as("other jobs are not held up")
                .isEqualTo("another job's plan");
        Thread.sleep(200); // the second request is waiting, not computing
        assertThat(second.isDone()).isFalse();
        release.countDown();
        PlanCache.Computed<String> a = first.get(10, TimeUnit.SECONDS), b = second.get(10, TimeUnit.SECONDS);
        assertThat(b).isSameAs(a);
        assertThat(a.value()).isEqualTo("plan of D1");
        assertThat(a.computedMillis()).isGreaterThanOrEqualTo(200);
        assertThat(computations).hasValue(1);
        assertThat(cache.get("gallery", D2, () -> "plan of D2").value()).as("once it ended, another date is computed")
                .isEqualTo("plan of D2");
    }

    @Test
    void theResultIsKeptForTheSetTimeThenComputedAgain() {
        AtomicInteger computations = new AtomicInteger();
        PlanCache.Computed<String> a = cache.get("gallery", D1, () -> "plan " + computations.incrementAndGet());
        assertThat(a.computedAt()).isEqualTo(clock.now);
        clock.now = clock.now.plusSeconds(59);
        assertThat(cache.get("gallery", D1, () -> "plan " + computations.incrementAndGet())).isSameAs(a);
        clock.now = clock.now.plusSeconds(2);
        PlanCache.Computed<String> b = cache.get("gallery", D1, () -> "plan " + computations.incrementAndGet());
        assertThat(b.value()).isEqualTo("plan 2");
        assertThat(b.computedAt()).isEqualTo(clock.now);
    }

    @Test
    void aFailureReachesEveryWaiterAndIsNotKept() throws Exception {
        CountDownLatch started = new CountDownLatch(1), release = new CountDownLatch(1);
        Future<?> first = pool.submit(() -> cache.get("gallery", D1, () -> {
            started.countDown();
            await(release);
            throw new ApiException(HttpStatus.CONFLICT, "cannot list the job's source");
        }));
        assertThat(started.await(10, TimeUnit.SECONDS)).isTrue();
        Future<?> second = pool.submit(() -> cache.get("gallery", D1, () -> "not asked"));
        Thread.sleep(200);
        release.countDown();
        for (Future<?> f : new Future<?>[] {first, second}) {
            assertThatThrownBy(() -> f.get(10, TimeUnit.SECONDS)).cause().isInstanceOf(ApiException.class)
                    .hasMessage("cannot list the job's source");
        }
        assertThat(cache.get("gallery", D1, () -> "asked again").value()).isEqualTo("asked again");
        assertThat(cache.get("gallery", D2, () -> "free again").value()).as("the failed computation no longer holds the job")
                .isEqualTo("free again");
    }

    @Test
    void aNegativeKeepIsRefused() {
        assertThatThrownBy(() -> new PlanCache<String>(Duration.ofSeconds(-1), clock)).isInstanceOf(IllegalArgumentException.class);
    }

    private static void await(CountDownLatch latch) {
        try {
            if (!latch.await(10, TimeUnit.SECONDS)) throw new IllegalStateException("never released");
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }
}
