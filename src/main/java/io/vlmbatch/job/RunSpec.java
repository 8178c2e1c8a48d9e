package io.vlmbatch.job;

/** How the infer step is cut up: items per transaction, and id-range partitions run on local threads. */
public record RunSpec(int chunkSize, int partitions) {}
