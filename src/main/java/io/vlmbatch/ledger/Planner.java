package io.vlmbatch.ledger;

import io.vlmbatch.image.ResizeSpec;
import io.vlmbatch.job.TaskSpec;
import io.vlmbatch.source.ImageFetcher;
import io.vlmbatch.source.ImageSource;
import io.vlmbatch.source.SourceItem;
import io.vlmbatch.store.WorkItem;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * What a run would do, without running it: lists the source, reads each item's bytes for its content
 * hash, renders the prompts and asks the ledger which answers exist. Images are not decoded, so an
 * unreadable file counts as unreadable but a corrupt image counts as new (the run then rejects it).
 */
public final class Planner {
    /** Ledger lookups per query: bounds the statement size on archives of millions of items. */
    private static final int BATCH = 500;

    /**
     * @param items       what the source lists
     * @param reusedItems items whose every answer would be copied
     * @param newItems    items with at least one task to ask
     * @param unreadable  items that cannot be read or whose prompts cannot be rendered (they would fail)
     * @param requests    requests the run would send
     * @param reusedAnswers answers that would be copied
     * @param model       the model the fingerprints were computed for
     * @param rate        the rate of earlier runs on the same endpoint and model
     */
    public record Plan(long items, long reusedItems, long newItems, long unreadable, long requests, long reusedAnswers,
                       String model, LedgerStore.Rate rate) {
        /** Estimated seconds of inference for the requests, or null when no earlier run measured a rate. */
        public Double estimatedSeconds() {
            return rate.known() ? requests * rate.secondsPerRequest() : null;
        }
    }

    private final LedgerStore ledger;

    public Planner(LedgerStore ledger) {
        this.ledger = ledger;
    }

    /** @param reuse run.reuse of the job: when off, every answer is asked */
    public Plan plan(ImageSource source, ImageFetcher fetcher, long maxBytes, List<TaskSpec> tasks, ResizeSpec resize,
                     String model, boolean reuse, LedgerStore.Rate rate) throws IOException {
        long[] n = new long[6]; // items, reusedItems, newItems, unreadable, requests, reusedAnswers
        List<List<LedgerStore.Key>> pending = new ArrayList<>();
        source.discover(item -> {
            n[0]++;
            List<LedgerStore.Key> keys = keys(item, fetcher, maxBytes, tasks, resize, model);
            if (keys == null) {
                n[3]++;
                return;
            }
            pending.add(keys);
            if (pending.size() == BATCH) settle(pending, reuse, n);
        });
        settle(pending, reuse, n);
        return new Plan(n[0], n[1], n[2], n[3], n[4], n[5], model, rate);
    }

    private void settle(List<List<LedgerStore.Key>> items, boolean reuse, long[] n) {
        Map<LedgerStore.Key, LedgerStore.Answer> known = reuse
                ? ledger.find(items.stream().flatMap(List::stream).toList(), -1) : Map.of();
        for (List<LedgerStore.Key> keys : items) {
            long found = keys.stream().filter(known::containsKey).count();
            n[5] += found;
            n[4] += keys.size() - found;
            if (found == keys.size() && !keys.isEmpty()) n[1]++;
            else n[2]++;
        }
        items.clear();
    }

    /** The item's ledger keys, one per task; null when it cannot be read or its prompts not rendered. */
    private static List<LedgerStore.Key> keys(SourceItem item, ImageFetcher fetcher, long maxBytes, List<TaskSpec> tasks,
                                              ResizeSpec resize, String model) {
        WorkItem w = new WorkItem(0, 0, item.itemKey(), item.uri(), item.metadata());
        List<String> prompts;
        String hash;
        try {
            prompts = ItemPrompts.render(w, tasks);
            hash = ContentHash.of(fetcher.fetch(item.uri(), maxBytes));
        } catch (IOException | RuntimeException e) {
            return null;
        }
        List<LedgerStore.Key> keys = new ArrayList<>();
        for (int t = 0; t < tasks.size(); t++) {
            keys.add(new LedgerStore.Key(hash, TaskFingerprint.of(model, prompts.get(t), tasks.get(t), resize)));
        }
        return keys;
    }
}
