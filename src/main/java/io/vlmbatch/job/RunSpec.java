package io.vlmbatch.job;

import java.time.Duration;

/**
 * How the infer step is cut up: items per transaction, and id-range partitions; reuse: whether done answers
 * of earlier runs with the same bytes and question are copied instead of asked again (the item ledger; on
 * unless the job says {@code run.reuse: false}). workers: where partitions run, as threads of this process
 * (local) or on `vlm-batch worker` processes reached through RabbitMQ (remote); workerTimeout: how long a
 * remote worker may stay silent before the partition it holds counts as lost and is sent again.
 */
public record RunSpec(int chunkSize, int partitions, boolean reuse, Workers workers, Duration workerTimeout) {
    public enum Workers { LOCAL, REMOTE }

    public static final Duration DEFAULT_WORKER_TIMEOUT = Duration.ofSeconds(60);
    /** Local partitions are threads of one process; remote ones are small ranges queued for any worker. */
    public static final int MAX_LOCAL_PARTITIONS = 256;
    public static final int MAX_REMOTE_PARTITIONS = 10_000;

    public RunSpec(int chunkSize, int partitions, boolean reuse) {
        this(chunkSize, partitions, reuse, Workers.LOCAL, DEFAULT_WORKER_TIMEOUT);
    }

    public RunSpec(int chunkSize, int partitions) {
        this(chunkSize, partitions, true);
    }

    public boolean remote() {
        return workers == Workers.REMOTE;
    }
}
