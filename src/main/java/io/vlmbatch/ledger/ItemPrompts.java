package io.vlmbatch.ledger;

import io.vlmbatch.job.TaskSpec;
import io.vlmbatch.store.WorkItem;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** The prompts of one item: what the processor sends, what `plan` looks up, what the fingerprint hashes. */
public final class ItemPrompts {
    private ItemPrompts() {}

    /**
     * Each task's final prompt for this item (what is sent, and what the ledger's fingerprint hashes).
     * @throws IllegalArgumentException naming the task whose template the item cannot fill
     */
    public static List<String> render(WorkItem item, List<TaskSpec> tasks) {
        List<String> prompts = new ArrayList<>();
        Map<String, String> vars = variables(item);
        for (TaskSpec task : tasks) {
            Map<String, String> v = new HashMap<>(vars);
            v.put("labels", String.join(", ", task.labels()));
            try {
                prompts.add(task.template().render(v));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("task " + task.name() + ": " + e.getMessage(), e);
            }
        }
        return prompts;
    }

    public static Map<String, String> variables(WorkItem item) {
        Map<String, String> vars = new HashMap<>(item.metadata());
        vars.put("member", item.member());
        vars.put("page", item.page() == null ? "" : item.page().toString());
        vars.put("file_name", item.fileName());
        vars.put("item_key", item.itemKey());
        vars.put("uri", item.uri());
        return vars;
    }
}
