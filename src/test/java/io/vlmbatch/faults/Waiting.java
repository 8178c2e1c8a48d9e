package io.vlmbatch.faults;

import java.time.Duration;
import java.util.function.BooleanSupplier;

/** Waiting for a condition while a run goes on, for experiments that act at a moment of the run. */
final class Waiting {
    private Waiting() {}

    /** True when the condition held before the timeout, false otherwise (the caller says what that means). */
    static boolean until(BooleanSupplier condition, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (condition.getAsBoolean()) return true;
            Thread.sleep(50);
        }
        return condition.getAsBoolean();
    }
}
