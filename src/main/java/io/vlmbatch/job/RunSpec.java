package io.vlmbatch.job;

/**
 * How the infer step is cut up: items per transaction, and id-range partitions run on local threads;
 * reuse: whether done answers of earlier runs with the same bytes and question are copied instead of
 * asked again (the item ledger; on unless the job says {@code run.reuse: false}).
 */
public record RunSpec(int chunkSize, int partitions, boolean reuse) {
    public RunSpec(int chunkSize, int partitions) {
        this(chunkSize, partitions, true);
    }
}
