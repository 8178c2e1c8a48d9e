package io.vlmbatch.ledger;

import io.vlmbatch.archive.Extracted;
import io.vlmbatch.archive.PageExtractor;
import io.vlmbatch.image.ResizeSpec;
import io.vlmbatch.job.TaskSpec;
import io.vlmbatch.source.ByteSources;
import io.vlmbatch.source.ImageFetcher;
import io.vlmbatch.source.ImageSource;
import io.vlmbatch.source.SourceItem;
import io.vlmbatch.source.SourceSpec;
import io.vlmbatch.source.Sources;
import io.vlmbatch.store.WorkItem;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What a run would do, without running it: lists the source as the run's discover does (pages of
 * documents and archive members included), computes each item's content hash and task fingerprints with
 * the run's own functions, and asks the ledger which answers exist. Pages are not rendered nor images
 * decoded: a page's hash needs only its document's bytes (streamed, each document once) and a member
 * image's hash its bytes (one member at a time, capped like the run). So an unreadable file counts as
 * unreadable but a corrupt image or page counts as new (the run then rejects it).
 */
public final class Planner {
    /** Ledger lookups per query: bounds the statement size on archives of millions of items. */
    private static final int BATCH = 500;

    /**
     * @param items       what the source lists (each image, page and member image is one item, as in the run)
     * @param documents   documents expanded into pages (a PDF, a TIFF stack, a PDF inside a ZIP), as the run counts them
     * @param pages       items that are a page of a document
     * @param reusedItems items whose every answer would be copied
     * @param newItems    items with at least one task to ask
     * @param unreadable  items that cannot be read or whose prompts cannot be rendered (they would fail)
     * @param requests    requests the run would send
     * @param reusedAnswers answers that would be copied
     * @param model       the model the fingerprints were computed for
     * @param rate        the rate of earlier runs on the same endpoint and model
     */
    public record Plan(long items, long documents, long pages, long reusedItems, long newItems, long unreadable,
                       long requests, long reusedAnswers, String model, LedgerStore.Rate rate) {
        /** Estimated seconds of inference for the requests, or null when no earlier run measured a rate. */
        public Double estimatedSeconds() {
            return rate.known() ? requests * rate.secondsPerRequest() : null;
        }
    }

    private final LedgerStore ledger;

    public Planner(LedgerStore ledger) {
        this.ledger = ledger;
    }

    /**
     * The plan of a job's source, read with the job's expansion and page settings ({@code source.expand},
     * {@code pdf.dpi}), exactly as its run would read it.
     *
     * @param reuse run.reuse of the job: when off, every answer is asked
     */
    public Plan plan(SourceSpec spec, ImageSource source, ImageFetcher fetcher, long maxBytes, List<TaskSpec> tasks,
                     ResizeSpec resize, String model, boolean reuse, LedgerStore.Rate rate) throws IOException {
        try (ByteSources files = ByteSources.of(spec.s3Settings())) {
            return new Run(fetcher, files, Sources.pages(spec, resize), maxBytes, tasks, resize, model, reuse)
                    .plan(source, rate);
        }
    }

    /** One plan's reading state: the document hash cache and the counts. */
    private final class Run {
        private final ImageFetcher fetcher;
        private final ByteSources files;
        private final PageExtractor pageReader;
        private final long maxBytes;
        private final List<TaskSpec> tasks;
        private final ResizeSpec resize;
        private final String model;
        private final boolean reuse;
        /** The run's processor keeps as many; pages of one document are listed together. */
        private final DocumentHashes documentHashes = new DocumentHashes(16);
        private final List<List<LedgerStore.Key>> pending = new ArrayList<>();
        /** (listed file, member) of documents seen; one entry per document, not per page. */
        private final Set<List<String>> documents = new HashSet<>();
        private long items, pages, reusedItems, newItems, unreadable, requests, reusedAnswers;

        Run(ImageFetcher fetcher, ByteSources files, PageExtractor pageReader, long maxBytes, List<TaskSpec> tasks,
            ResizeSpec resize, String model, boolean reuse) {
            this.fetcher = fetcher;
            this.files = files;
            this.pageReader = pageReader;
            this.maxBytes = maxBytes;
            this.tasks = tasks;
            this.resize = resize;
            this.model = model;
            this.reuse = reuse;
        }

        Plan plan(ImageSource source, LedgerStore.Rate rate) throws IOException {
            source.discover(item -> {
                items++;
                if (item.page() != null) {
                    pages++;
                    documents.add(List.of(item.uri(), item.member()));
                }
                List<LedgerStore.Key> keys = keys(item);
                if (keys == null) {
                    unreadable++;
                    return;
                }
                pending.add(keys);
                if (pending.size() == BATCH) settle();
            });
            settle();
            return new Plan(items, documents.size(), pages, reusedItems, newItems, unreadable, requests, reusedAnswers,
                    model, rate);
        }

        private void settle() {
            Map<LedgerStore.Key, LedgerStore.Answer> known = reuse
                    ? ledger.find(pending.stream().flatMap(List::stream).toList(), -1) : Map.of();
            for (List<LedgerStore.Key> keys : pending) {
                long found = keys.stream().filter(known::containsKey).count();
                reusedAnswers += found;
                requests += keys.size() - found;
                if (found == keys.size() && !keys.isEmpty()) reusedItems++;
                else newItems++;
            }
            pending.clear();
        }

        /**
         * The item's ledger keys, one per task, as the run's processor and writer make them; null when the
         * item would fail before being asked (refused at listing, unreadable, a prompt that cannot be filled).
         */
        private List<LedgerStore.Key> keys(SourceItem item) {
            if (item.failure() != null) return null;
            WorkItem w = new WorkItem(0, 0, item.itemKey(), item.uri(), item.metadata(), item.member(), item.page());
            List<String> prompts;
            String hash;
            String renderedWith = null;
            try {
                prompts = ItemPrompts.render(w, tasks);
                if (!w.inContainer()) {
                    hash = ContentHash.of(fetcher.fetch(w.uri(), maxBytes));
                } else {
                    byte[] memberImage = null;
                    if (w.page() == null) {
                        memberImage = ((Extracted.ImageBytes) pageReader.extract(files.open(w.uri()), w.member(), null)).bytes();
                    } else {
                        renderedWith = pageReader.renderedWith(files.open(w.uri()), w.member(), w.page());
                    }
                    hash = documentHashes.itemHash(w, memberImage, () -> files.open(w.uri()).openAt(0));
                }
            } catch (IOException | RuntimeException e) {
                return null;
            }
            List<LedgerStore.Key> keys = new ArrayList<>();
            for (int t = 0; t < tasks.size(); t++) {
                keys.add(new LedgerStore.Key(hash, TaskFingerprint.of(model, prompts.get(t), tasks.get(t), resize, renderedWith)));
            }
            return keys;
        }
    }
}
