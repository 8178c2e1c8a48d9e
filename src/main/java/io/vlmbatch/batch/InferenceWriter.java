package io.vlmbatch.batch;

import io.vlmbatch.inference.ChatRequest;
import io.vlmbatch.inference.ChatResult;
import io.vlmbatch.inference.InferenceUnavailableException;
import io.vlmbatch.inference.OpenAiClient;
import io.vlmbatch.job.TaskSpec;
import io.vlmbatch.store.ItemStatus;
import io.vlmbatch.store.ResultStore;
import io.vlmbatch.store.TaskOutcome;
import io.vlmbatch.store.WorkItemStore;
import java.util.ArrayList;
import java.util.List;
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
 *
 * An answer that is an error about the request (HTTP 4xx, a classification outside the labels) fails
 * that task of that item. A server that stays unreachable through the client's retries fails the
 * chunk: nothing of it is stored, and `restart` redoes it.
 */
public class InferenceWriter implements ItemWriter<PreparedItem> {
    private final Supplier<OpenAiClient> client;
    private final Supplier<String> model;
    private final List<TaskSpec> tasks;
    private final WorkItemStore items;
    private final ResultStore results;

    public InferenceWriter(Supplier<OpenAiClient> client, Supplier<String> model, List<TaskSpec> tasks,
                           WorkItemStore items, ResultStore results) {
        this.client = client;
        this.model = model;
        this.tasks = tasks;
        this.items = items;
        this.results = results;
    }

    @Override
    public void write(Chunk<? extends PreparedItem> chunk) throws Exception {
        OpenAiClient c = client.get();
        String m = model.get();
        List<List<Future<ChatResult>>> answers = new ArrayList<>();
        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            for (PreparedItem p : chunk) {
                List<Future<ChatResult>> perTask = new ArrayList<>();
                if (!p.rejected()) {
                    for (int t = 0; t < tasks.size(); t++) {
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
            List<Future<ChatResult>> perTask = answers.get(i++);
            if (p.rejected()) {
                items.finish(p.item().id(), ItemStatus.FAILED, p.rejectReason(), null, null);
                continue;
            }
            List<TaskOutcome> outcomes = new ArrayList<>();
            List<String> errors = new ArrayList<>();
            for (int t = 0; t < tasks.size(); t++) {
                TaskSpec task = tasks.get(t);
                ChatResult r = checked(task, perTask.get(t).resultNow());
                outcomes.add(new TaskOutcome(task.name(), r));
                if (!r.ok()) errors.add(task.name() + ": " + r.error());
            }
            results.upsert(p.item().id(), outcomes);
            items.finish(p.item().id(), errors.isEmpty() ? ItemStatus.DONE : ItemStatus.FAILED,
                    errors.isEmpty() ? null : String.join("; ", errors), p.width(), p.height());
        }
    }

    /** Waits for every answer; the first unreachable-server failure cancels the rest and fails the chunk. */
    private static void awaitAll(List<List<Future<ChatResult>>> answers) throws InterruptedException {
        for (List<Future<ChatResult>> perTask : answers) {
            for (Future<ChatResult> f : perTask) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    answers.forEach(l -> l.forEach(x -> x.cancel(true)));
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
