package io.vlmbatch.batch;

import io.vlmbatch.store.WorkItemStore;
import java.util.LinkedHashMap;
import java.util.Map;
import org.springframework.batch.core.partition.Partitioner;
import org.springframework.batch.infrastructure.item.ExecutionContext;

/**
 * Splits a run's work items into contiguous id ranges, one per local worker thread. The ranges are
 * saved in each partition's execution context, so a restart resumes the same partitions.
 */
public class IdRangePartitioner implements Partitioner {
    private final WorkItemStore store;
    private final long runId;

    public IdRangePartitioner(WorkItemStore store, long runId) {
        this.store = store;
        this.runId = runId;
    }

    @Override
    public Map<String, ExecutionContext> partition(int gridSize) {
        Map<String, ExecutionContext> parts = new LinkedHashMap<>();
        long[] range = store.idRange(runId);
        if (range == null) {
            parts.put("p0", context(1, 0)); // empty range: the worker reads nothing and completes
            return parts;
        }
        long min = range[0], max = range[1];
        long span = max - min + 1;
        int n = (int) Math.max(1, Math.min(gridSize, span));
        long size = (span + n - 1) / n;
        for (int i = 0; i < n; i++) {
            long lo = min + i * size;
            long hi = Math.min(max, lo + size - 1);
            if (lo > max) break;
            parts.put("p" + i, context(lo, hi));
        }
        return parts;
    }

    private static ExecutionContext context(long minId, long maxId) {
        ExecutionContext c = new ExecutionContext();
        c.putLong("minId", minId);
        c.putLong("maxId", maxId);
        return c;
    }
}
