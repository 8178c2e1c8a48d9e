package io.vlmbatch.store;

import io.vlmbatch.inference.ChatResult;

/**
 * The stored result of one task on one image, with its ledger entry: the item's content hash, the
 * task's fingerprint, and for an answer copied from the ledger the run that asked for it (else null).
 */
public record TaskOutcome(String task, ChatResult result, String contentHash, String fingerprint, Long reusedFromRun) {
    public TaskOutcome(String task, ChatResult result) {
        this(task, result, null, null, null);
    }

    public boolean reused() { return reusedFromRun != null; }
}
