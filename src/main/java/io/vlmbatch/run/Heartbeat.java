package io.vlmbatch.run;

import io.vlmbatch.store.RunStore;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.step.StepExecution;

/**
 * Refreshes the heartbeat of every run this process owns, every few seconds, so that processes on other
 * hosts can tell a live owner from a dead one (RunOwnership). A run whose row no longer names this
 * process was taken over (`restart --force`): this process stops its execution at the next chunk
 * boundary, so two processes do not keep working on one run.
 */
public final class Heartbeat implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Heartbeat.class);

    private final RunStore runs;
    private final RunOwnership ownership;
    private final Map<Long, JobExecution> owned = new ConcurrentHashMap<>();
    private final ScheduledExecutorService timer;

    public Heartbeat(RunStore runs, RunOwnership ownership, Duration every) {
        this.runs = runs;
        this.ownership = ownership;
        this.timer = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("run-heartbeat").factory());
        timer.scheduleWithFixedDelay(this::beat, every.toMillis(), every.toMillis(), TimeUnit.MILLISECONDS);
    }

    public void add(JobExecution execution) { owned.put(execution.getJobInstance().getInstanceId(), execution); }

    public void remove(long runId) { owned.remove(runId); }

    void beat() {
        if (owned.isEmpty()) return;
        try {
            // one snapshot for the update and the check: a run added meanwhile was not asked about
            Set<Long> asked = Set.copyOf(owned.keySet());
            Set<Long> stillOurs = runs.beat(asked, ownership.host(), ownership.pid());
            for (Long runId : asked) {
                JobExecution lost = stillOurs.contains(runId) ? null : owned.remove(runId);
                if (lost != null) {
                    log.warn("run {} was taken over by another process (restart --force); stopping this process's execution {}",
                            runId, lost.getId());
                    lost.getStepExecutions().forEach(StepExecution::setTerminateOnly);
                }
            }
        } catch (RuntimeException e) {
            // the database may be briefly unreachable; the stale timeout is several beats long
            log.warn("run heartbeat failed (retrying): {}", e.toString());
        }
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
