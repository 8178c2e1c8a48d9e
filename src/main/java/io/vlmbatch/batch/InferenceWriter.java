package io.vlmbatch.batch;

import io.vlmbatch.inference.ChatRequest;
import io.vlmbatch.inference.ChatResult;
import io.vlmbatch.inference.InferenceUnavailableException;
import io.vlmbatch.inference.OpenAiClient;
import io.vlmbatch.image.ResizeSpec;
import io.vlmbatch.job.TaskSpec;
import io.vlmbatch.ledger.LedgerStore;
import io.vlmbatch.ledger.TaskFingerprint;
import io.vlmbatch.store.ItemStatus;
import io.vlmbatch.store.ResultStore;
import io.vlmbatch.store.TaskOutcome;
import io.vlmbatch.store.WorkItemStore;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Supplier;
import org.springframework.batch.infrastructure.item.Chunk;
import org.springframework.batch.infrastructure.item.ItemWriter;

/**
 * Asks every task about every image of the chunk at once (one virtual thread per request; the
 * client's semaphore bounds what is on the wire), then stores the answers in the chunk's transaction.
 * The tasks of one image are sent together so a server with prefix caching encodes the image once.
 * A task whose answer the ledger already holds (same bytes, same fingerprint, any earlier run) is not
 * sent: the answer is copied with a reference to the run that asked for it.
 *
 * An answer that is an error about the request (HTTP 4xx, a classification outside the labels) fails
 * that task of that item. A server that stays unreachable through the client's retries fails the
 * chunk: nothing of it is stored, and `restart` redoes it.
 */
public class InferenceWriter implements ItemWriter<PreparedItem> {
    private final Supplier<OpenAiClient> client;
    private final Supplier<String> model;
    /** The model as the ledger knows it (InferenceService.ledgerModel). */
    private final Supplier<String> ledgerModel;
    private final List<TaskSpec> tasks;
    private final WorkItemStore items;
    private final ResultStore results;
    private final ResizeSpec resize;
    /** null: reuse is off (run.reuse: false); answers are still fingerprinted for later runs. */
    private final LedgerStore ledger;
    /** The job instance writing: its own answers are not reused (another copy in this run is asked too). */
    private final long currentRun;
    /** A retry attempt limited to one task asks only that one (null: every task). */
    private final String onlyTask;

    public InferenceWriter(Supplier<OpenAiClient> client, Supplier<String> model, Supplier<String> ledgerModel, List<TaskSpec> tasks,
                           WorkItemStore items, ResultStore results, ResizeSpec resize, LedgerStore ledger,
                           long currentRun, String onlyTask) {
        this.client = client;
        this.model = model;
        this.ledgerModel = ledgerModel;
        this.tasks = tasks;
        this.items = items;
        this.results = results;
        this.resize = resize;
        this.ledger = ledger;
        this.currentRun = currentRun;
        this.onlyTask = onlyTask;
    }

    private boolean asks(int task) {
        return onlyTask == null || tasks.get(task).name().equals(onlyTask);
    }

    @Override
    public void write(Chunk<? extends PreparedItem> chunk) throws Exception {
        OpenAiClient c = client.get();
        String m = model.get();
        String lm = ledgerModel.get();
        List<List<String>> fingerprints = new ArrayList<>();
        List<LedgerStore.Key> keys = new ArrayList<>();
        for (PreparedItem p : chunk) {
            List<String> perTask = new ArrayList<>();
            if (!p.rejected()) {
                for (int t = 0; t < tasks.size(); t++) {
                    if (!asks(t)) {
                        perTask.add(null);
                        continue;
                    }
                    String fp = TaskFingerprint.of(lm, p.prompts().get(t), tasks.get(t), resize, p.renderedWith());
                    perTask.add(fp);
                    keys.add(new LedgerStore.Key(p.contentHash(), fp));
                }
            }
            fingerprints.add(perTask);
        }
        Map<LedgerStore.Key, LedgerStore.Answer> known = ledger == null ? Map.of() : ledger.find(keys, currentRun);

        List<List<Future<ChatResult>>> answers = new ArrayList<>();
        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            int i = 0;
            for (PreparedItem p : chunk) {
                List<String> fps = fingerprints.get(i++);
                List<Future<ChatResult>> perTask = new ArrayList<>();
                if (!p.rejected()) {
                    for (int t = 0; t < tasks.size(); t++) {
                        if (!asks(t)) {
                            perTask.add(null);
                            continue;
                        }
                        if (known.containsKey(new LedgerStore.Key(p.contentHash(), fps.get(t)))) {
                            perTask.add(null); // answered before: no request
                            continue;
                        }
                        TaskSpec task = tasks.get(t);
                        ChatRequest request = new ChatRequest(m, p.imageDataUrl(), p.prompts().get(t), task.maxTokens(),
                                task.temperature(), task.topP(), task.seed(), task.labels());
                        perTask.add(threads.submit(() -> c.complete(request)));
                    }
                }
                answers.add(perTask);
            }
            awaitAll(answers);
        }
        int i = 0;
        for (PreparedItem p : chunk) {
            List<String> fps = fingerprints.get(i);
            List<Future<ChatResult>> perTask = answers.get(i++);
            if (p.rejected()) {
                items.finish(p.item().id(), ItemStatus.FAILED, p.rejectReason(), null, null, p.contentHash(), false);
                continue;
            }
            List<TaskOutcome> outcomes = new ArrayList<>();
            List<String> errors = new ArrayList<>();
            boolean allReused = true;
            for (int t = 0; t < tasks.size(); t++) {
                if (!asks(t)) continue;
                TaskSpec task = tasks.get(t);
                Future<ChatResult> asked = perTask.get(t);
                TaskOutcome o;
                if (asked == null) {
                    LedgerStore.Answer a = known.get(new LedgerStore.Key(p.contentHash(), fps.get(t)));
                    ChatResult copied = new ChatResult(a.answer(), null, a.model(), a.promptTokens(), a.completionTokens(), 0, 0);
                    o = new TaskOutcome(task.name(), copied, p.contentHash(), fps.get(t), a.sourceRunId());
                } else {
                    allReused = false;
                    o = new TaskOutcome(task.name(), checked(task, asked.resultNow()), p.contentHash(), fps.get(t), null);
                }
                outcomes.add(o);
                if (!o.result().ok()) errors.add(task.name() + ": " + o.result().error());
            }
            results.upsert(p.item().id(), outcomes);
            if (onlyTask != null) {
                items.finishFromResults(p.item().id(), p.width(), p.height(), p.contentHash());
                continue;
            }
            items.finish(p.item().id(), errors.isEmpty() ? ItemStatus.DONE : ItemStatus.FAILED,
                    errors.isEmpty() ? null : String.join("; ", errors), p.width(), p.height(), p.contentHash(),
                    allReused && !tasks.isEmpty());
        }
    }

    /** Waits for every answer; the first unreachable-server failure cancels the rest and fails the chunk. */
    private static void awaitAll(List<List<Future<ChatResult>>> answers) throws InterruptedException {
        for (List<Future<ChatResult>> perTask : answers) {
            for (Future<ChatResult> f : perTask) {
                if (f == null) continue;
                try {
                    f.get();
                } catch (ExecutionException e) {
                    answers.forEach(l -> l.forEach(x -> {
                        if (x != null) x.cancel(true);
                    }));
                    if (e.getCause() instanceof InferenceUnavailableException u) throw u;
                    throw new IllegalStateException("inference request failed: " + e.getCause(), e.getCause());
                }
            }
        }
    }

    /** Servers that ignore structured_outputs may answer anything: a choice task's answer must be a label. */
    static ChatResult checked(TaskSpec task, ChatResult r) {
        if (!r.ok() || !task.isChoice()) return r;
        String answer = r.answer().strip();
        if (!task.labels().contains(answer)) {
            return r.withError("answer \"" + abbreviate(answer) + "\" is not one of the labels " + task.labels());
        }
        return r;
    }

    private static String abbreviate(String s) {
        return s.length() > 80 ? s.substring(0, 80) + "..." : s;
    }
}
