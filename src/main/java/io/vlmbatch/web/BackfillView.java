package io.vlmbatch.web;

import io.vlmbatch.schedule.Backfill;
import java.time.LocalDate;
import java.util.List;

/**
 * The answer to POST /api/jobs/{job}/backfill: per run of the range, what backfill did (started,
 * restarted, rerun: queued; skipped, with the reason) and the state the run had before (null: none).
 */
public record BackfillView(String job, String from, String to, String reprocess, long queued, long skipped, List<Run> runs) {
    public record Run(String logicalDate, String params, String action, String previousState, String reason) {}

    static BackfillView of(String job, LocalDate from, LocalDate to, Backfill.Reprocess mode, List<Backfill.Decision> decisions) {
        long queued = decisions.stream().filter(Backfill.Decision::queued).count();
        return new BackfillView(job, from.toString(), to.toString(), mode.word(), queued, decisions.size() - queued,
                decisions.stream().map(d -> new Run(d.logicalDate().toString(), d.params(), d.action().word(), d.previousState(),
                        d.reason())).toList());
    }
}
