package io.vlmbatch.worker;

import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This worker process's row in vlm_worker: registered at start, beaten every few seconds (a manager counts a
 * partition lost when its worker stops beating for the job's run.worker_timeout), marked stopped on a clean
 * shutdown so its partitions are given to others at once.
 */
public final class WorkerHeartbeat implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(WorkerHeartbeat.class);

    private final WorkerStore store;
    private final String workerId;
    private final String host;
    private final long pid;
    private final ScheduledExecutorService timer;

    public WorkerHeartbeat(WorkerStore store, String host, Duration every) {
        this.store = store;
        this.host = host;
        this.pid = ProcessHandle.current().pid();
        this.workerId = host + ":" + pid + ":" + System.currentTimeMillis();
        store.register(workerId, host, pid);
        timer = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("worker-heartbeat").factory());
        timer.scheduleWithFixedDelay(this::beat, every.toMillis(), every.toMillis(), TimeUnit.MILLISECONDS);
    }

    public String workerId() { return workerId; }

    public String host() { return host; }

    public long pid() { return pid; }

    private void beat() {
        try {
            store.beat(workerId);
        } catch (RuntimeException e) {
            // the database may be briefly unreachable; the timeout is several beats long
            log.warn("worker heartbeat failed (retrying): {}", e.toString());
        }
    }

    @Override
    public void close() {
        timer.shutdownNow();
        try {
            store.stopped(workerId);
        } catch (RuntimeException e) {
            log.warn("could not mark worker {} stopped: {}", workerId, e.toString());
        }
    }
}
