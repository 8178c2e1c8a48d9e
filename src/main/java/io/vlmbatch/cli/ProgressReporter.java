package io.vlmbatch.cli;

import io.vlmbatch.store.ItemCounts;
import io.vlmbatch.store.WorkItemStore;
import java.io.PrintStream;
import java.time.Duration;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * Shows how a run goes, from the database's counts: on a terminal one line rewritten in place every
 * second (done / failed / pending, images/s, ETA) that log lines never land on (see TerminalLine);
 * otherwise a log line every 10 seconds.
 *
 * <p>The rate is measured from the first count seen (items finished before it, e.g. by the run a
 * restart resumes, are not in it), and nothing is shown until some time has passed since then: a
 * rate over a zero interval would be 0 or absurd.
 */
public final class ProgressReporter implements AutoCloseable {
    private static final Duration TICK = Duration.ofSeconds(1);
    private final Supplier<ItemCounts> counts;
    private final boolean tty;
    private final PrintStream out;
    private final Duration every;
    private final LongSupplier clock;
    private final TerminalLine line;
    private final Thread thread;
    private volatile boolean stopped;
    private ItemCounts first;
    private long firstNanos;
    private long lastShownNanos;

    public ProgressReporter(WorkItemStore items, Supplier<Long> runId, boolean tty, PrintStream out) {
        this(() -> {
            Long id = runId.get();
            return id == null ? null : items.counts(id);
        }, tty, out, tty ? Duration.ofSeconds(1) : Duration.ofSeconds(10), System::nanoTime);
    }

    ProgressReporter(Supplier<ItemCounts> counts, boolean tty, PrintStream out, Duration every, LongSupplier clock) {
        this.counts = counts;
        this.tty = tty;
        this.out = out;
        this.every = every;
        this.clock = clock;
        this.line = tty ? new TerminalLine(out) : null;
        this.thread = Thread.ofPlatform().daemon().name("progress").unstarted(this::loop);
    }

    public ProgressReporter start() {
        if (line != null) line.install();
        thread.start();
        return this;
    }

    private void loop() {
        Duration tick = every.compareTo(TICK) < 0 ? every : TICK;
        while (!stopped) {
            try {
                Thread.sleep(tick);
                tick();
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                // the database may be busy or going away at shutdown; the next tick tries again
            }
        }
    }

    /** One look at the counts: the first one is the baseline; a line is shown once a full interval has passed. */
    synchronized void tick() {
        ItemCounts c = counts.get();
        if (c == null || c.total() == 0) return;
        long now = clock.getAsLong();
        if (first == null) {
            first = c;
            firstNanos = now;
            lastShownNanos = now;
            return;
        }
        if (now - lastShownNanos < every.toNanos()) return;
        lastShownNanos = now;
        double rate = (c.finished() - first.finished()) / ((now - firstNanos) / 1e9);
        String eta = rate > 0 && c.pending() > 0 ? " ETA " + format(Duration.ofSeconds((long) (c.pending() / rate))) : "";
        String text = String.format("%d/%d images: %d done, %d failed, %d pending, %.2f images/s%s",
                c.finished(), c.total(), c.done(), c.failed(), c.pending(), rate, eta);
        if (line != null) {
            line.show(text);
        } else {
            out.println("progress: " + text);
            out.flush();
        }
    }

    private static String format(Duration d) {
        long s = d.toSeconds();
        return s >= 3600 ? String.format("%dh%02dm", s / 3600, s / 60 % 60) : String.format("%dm%02ds", s / 60, s % 60);
    }

    @Override
    public void close() {
        stopped = true;
        thread.interrupt();
        try {
            thread.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (line != null) {
            line.finish();
            line.release();
        }
    }
}
