package io.vlmbatch.schedule;

import io.vlmbatch.job.JobDefinition;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * The scheduler's launcher port for scheduler-logic tests: it records each launch and lets the test
 * end runs when it chooses, like the controllable clock (BatchRunLauncher, which runs real Batch jobs,
 * is exercised end to end by the web tests).
 */
final class ControlledLauncher implements RunLauncher {
    record Launch(String job, String logicalDate, int attempt, String rerun, Consumer<RunOutcome> done) {}

    final List<Launch> launches = new CopyOnWriteArrayList<>();
    final List<Launch> open = new CopyOnWriteArrayList<>();
    final List<String> stops = new CopyOnWriteArrayList<>();

    @Override
    public Handle launch(JobDefinition job, ScheduledRun run, LocalDate previousLogicalDate, Consumer<RunOutcome> done) {
        Launch l = new Launch(job.name(), run.logicalDate().toString(), run.attempt(), run.rerun(), done);
        launches.add(l);
        open.add(l);
        return () -> stops.add(run.logicalDate().toString());
    }

    /** Ends the oldest open run. */
    void finishOldest(RunOutcome outcome) {
        Launch l = open.removeFirst();
        l.done().accept(outcome);
    }

    void finishAll(RunOutcome outcome) {
        for (Launch l : new ArrayList<>(open)) {
            open.remove(l);
            l.done().accept(outcome);
        }
    }

    List<String> dates() {
        return launches.stream().map(Launch::logicalDate).toList();
    }
}
