package io.vlmbatch.web;

import java.util.List;

/**
 * One item of a run with its answers across runs (GET /api/runs/{runId}/items/{itemId}/history): its
 * current answers, the answers retry attempts replaced (oldest attempt first), and the other runs, of any
 * job, that held the same bytes (same content hash), newest first, each with its answers and, for a
 * reused answer, the run it was copied from.
 */
public record ItemHistory(long runId, String job, String logicalDate, long itemId, String itemKey, String uri, String status,
                          String error, String contentHash, List<Answer> answers, List<Answer> replaced, List<Seen> otherRuns) {

    /**
     * One task's answer. reusedFromRun: the run whose request produced it (null: asked by its own run);
     * replacedByAttempt: for an answer a retry attempt replaced, that attempt's number (null: current).
     */
    public record Answer(String task, String status, String answer, String error, String model, Long reusedFromRun,
                         Integer replacedByAttempt, String answeredAt) {}

    public record Seen(long runId, String job, String logicalDate, long itemId, String itemKey, String status, List<Answer> answers) {}
}
