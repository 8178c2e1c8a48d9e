package io.vlmbatch.web;

import java.util.List;

/** A job of the catalog as the API shows it; a job file that does not load has only name, file and error. */
public record JobView(String name, String file, String error, String schedule, String timezone, Boolean catchup,
                      Integer maxActiveRuns, Integer retries, Long retryDelaySeconds, String startDate, String nextRunAt,
                      List<String> tasks, RunSummary lastRun) {

    static JobView broken(String name, String file, String error) {
        return new JobView(name, file, error, null, null, null, null, null, null, null, null, null, null);
    }
}
