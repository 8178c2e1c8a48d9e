package io.vlmbatch.batch;

import io.vlmbatch.store.WorkItem;
import io.vlmbatch.store.WorkItemStore;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import org.springframework.batch.infrastructure.item.ItemReader;

/**
 * Reads the still-pending items of one id range, a page at a time, by keyset (id > last id read).
 * It keeps no restart state on purpose: after a crash the database itself says what is left, since an
 * item leaves 'pending' in the same transaction that stores its results.
 */
public class PendingItemReader implements ItemReader<WorkItem> {
    private final WorkItemStore store;
    private final long runId;
    private final long maxId;
    private final int pageSize;
    private final Deque<WorkItem> page = new ArrayDeque<>();
    private long lastId;
    private boolean exhausted;

    public PendingItemReader(WorkItemStore store, long runId, long minId, long maxId, int pageSize) {
        this.store = store;
        this.runId = runId;
        this.lastId = minId - 1;
        this.maxId = maxId;
        this.pageSize = pageSize;
    }

    @Override
    public WorkItem read() {
        if (page.isEmpty() && !exhausted) {
            List<WorkItem> next = store.pending(runId, lastId, maxId, pageSize);
            if (next.size() < pageSize) exhausted = true;
            if (!next.isEmpty()) lastId = next.getLast().id();
            page.addAll(next);
        }
        return page.poll();
    }
}
