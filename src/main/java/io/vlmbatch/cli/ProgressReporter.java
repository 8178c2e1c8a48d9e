package io.vlmbatch.cli;

import io.vlmbatch.store.ItemCounts;
import io.vlmbatch.store.WorkItemStore;
import java.io.PrintStream;
import java.time.Duration;
import java.util.function.Supplier;

/**
 * Shows how a run goes, from the database's counts: on a terminal one line rewritten in place every
 * second (done / failed / pending, images/s, ETA); otherwise a log line every 10 seconds.
 */
public final class ProgressReporter implements AutoCloseable {
    private final WorkItemStore items;
    private final Supplier<Long> runId;
    private final boolean tty;
    private final PrintStream out;
    private final Thread thread;
    private volatile boolean stopped;
    private Long firstFinished;
    private long startNanos;
    private boolean printedLine;

    public ProgressReporter(WorkItemStore items, Supplier<Long> runId, boolean tty, PrintStream out) {
        this.items = items;
        this.runId = runId;
        this.tty = tty;
        this.out = out;
        this.thread = Thread.ofPlatform().daemon().name("progress").unstarted(this::loop);
    }

    public ProgressReporter start() {
        thread.start();
        return this;
    }

    private void loop() {
        Duration every = tty ? Duration.ofSeconds(1) : Duration.ofSeconds(10);
        while (!stopped) {
            try {
                Thread.sleep(every);
                report(false);
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                // the database may be busy or going away at shutdown; the next tick tries again
            }
        }
    }

    private synchronized void report(boolean last) {
        Long id = runId.get();
        if (id == null) return;
        ItemCounts c = items.counts(id);
        if (c.total() == 0 && !last) return;
        long now = System.nanoTime();
        if (firstFinished == null) {
            firstFinished = c.finished();
            startNanos = now;
        }
        double seconds = (now - startNanos) / 1e9;
        double rate = seconds > 0 ? (c.finished() - firstFinished) / seconds : 0;
        String eta = rate > 0 && c.pending() > 0 ? " ETA " + format(Duration.ofSeconds((long) (c.pending() / rate))) : "";
        String line = String.format("%d/%d images: %d done, %d failed, %d pending, %.2f images/s%s",
                c.finished(), c.total(), c.done(), c.failed(), c.pending(), rate, eta);
        if (tty) {
            out.print("\r\033[K" + line + (last ? "\n" : ""));
            printedLine = !last;
        } else {
            out.println("progress: " + line);
        }
        out.flush();
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
        if (tty && printedLine) {
            out.println();
        }
    }
}
