package io.vlmbatch.schedule;

import java.time.Instant;
import java.time.LocalDate;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One row of vlm_schedule_run: a data interval of a job and where its run stands. rerun: null to start
 * or resume the run; "failed" or "all" for a new attempt over its failed items or every item (Rerun).
 */
public record ScheduledRun(String jobName, Instant intervalStart, Instant intervalEnd, LocalDate logicalDate,
                           String params, String trigger, String state, int attempt, Instant nextAttemptAt,
                           String owner, Instant heartbeatAt, boolean stopRequested, String lastError,
                           Instant queuedAt, Instant startedAt, Instant endedAt, String rerun) {

    /** The run's --param values, parsed back from the canonical k=v&k2=v2 text. */
    public Map<String, String> paramMap() {
        Map<String, String> m = new LinkedHashMap<>();
        if (params == null || params.isEmpty()) return m;
        for (String kv : params.split("&")) {
            int eq = kv.indexOf('=');
            m.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        return m;
    }
}
