package io.vlmbatch.pipeline;

import java.time.Duration;
import java.util.function.LongPredicate;
import java.util.function.LongSupplier;

/** Polls a value until it satisfies a condition, for tests that act in the middle of a run. */
final class Polling {
    private Polling() {}

    static long until(LongSupplier value, LongPredicate done) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        while (System.nanoTime() < deadline) {
            long v = value.getAsLong();
            if (done.test(v)) return v;
            Thread.sleep(50);
        }
        throw new AssertionError("condition not reached in 3 minutes");
    }
}
