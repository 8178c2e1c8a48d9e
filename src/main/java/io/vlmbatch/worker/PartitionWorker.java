package io.vlmbatch.worker;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.batch.core.scope.context.JobSynchronizationManager;
import org.springframework.batch.core.step.StepExecution;
import org.springframework.batch.integration.partition.StepExecutionRequest;
import org.springframework.batch.integration.partition.StepExecutionRequestHandler;

/**
 * Runs one partition request from the broker: claims the partition (WorkerStore: a request delivered
 * twice, or for a partition that ended or that a live worker holds, is dropped), runs the step through
 * Spring Batch's StepExecutionRequestHandler with the run's job context registered (the step's job-scoped
 * beans resolve from the run's JobParameters), records how it ended and logs what it ran.
 */
public final class PartitionWorker implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(PartitionWorker.class);

    private final JobRepository repository;
    private final WorkerStore store;
    private final WorkerHeartbeat self;
    private final StepExecutionRequestHandler handler;
    private final Function<JobExecution, Duration> workerTimeout;
    private final Consumer<JobExecution> jobEnded;
    /** Runs this worker took partitions of, by job execution id, with their worker timeout; swept when they end. */
    private final Map<Long, Duration> runs = new ConcurrentHashMap<>();
    private final ScheduledExecutorService sweeper;

    /**
     * @param workerTimeout the run's run.worker_timeout (how long a holder may be silent before its partition is
     *                      taken over), read from the run's job file
     * @param jobEnded      told once a run this worker took part in has ended (its inference service can go)
     */
    public PartitionWorker(JobRepository repository, WorkerStore store, WorkerHeartbeat self, StepExecutionRequestHandler handler,
                           Function<JobExecution, Duration> workerTimeout, Consumer<JobExecution> jobEnded) {
        this.repository = repository;
        this.store = store;
        this.self = self;
        this.handler = handler;
        this.workerTimeout = workerTimeout;
        this.jobEnded = jobEnded;
        sweeper = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("worker-runs").factory());
        sweeper.scheduleWithFixedDelay(this::sweep, 10, 10, TimeUnit.SECONDS);
    }

    /** Lets go of the runs that ended (their services hold connections, or an embedded server). */
    private void sweep() {
        for (Long id : runs.keySet()) {
            try {
                JobExecution job = repository.getJobExecution(id);
                if (job == null || !job.isRunning()) {
                    runs.remove(id);
                    if (job != null) jobEnded.accept(job);
                }
            } catch (RuntimeException e) {
                log.warn("checking whether run execution {} ended failed (retrying): {}", id, e.toString());
            }
        }
    }

    @Override
    public void close() {
        sweeper.shutdownNow();
    }

    public void handle(StepExecutionRequest request) {
        long id = request.getStepExecutionId();
        StepExecution found = repository.getStepExecution(id);
        if (found == null) {
            log.warn("partition request for step execution {}, which does not exist: dropped", id);
            return;
        }
        JobExecution job = found.getJobExecution();
        String what = found.getStepName() + " of job " + job.getJobInstance().getJobName() + " (run " + job.getJobInstance().getInstanceId()
                + ", execution " + job.getId() + ")";
        Duration timeout = runs.computeIfAbsent(job.getId(), k -> workerTimeout.apply(job));
        WorkerStore.Claim claim = store.claim(id, self.workerId(), timeout, this::deadOnThisHost);
        switch (claim) {
            case WorkerStore.Claim.Finished f -> log.info("partition {} is already {}: request dropped", what, f.status());
            case WorkerStore.Claim.HeldBy h -> log.info("partition {} is held by live worker {}: request dropped", what, h.workerId());
            case WorkerStore.Claim.Taken t -> run(request, t, what, found);
        }
    }

    private void run(StepExecutionRequest request, WorkerStore.Claim.Taken claim, String what, StepExecution found) {
        long started = System.nanoTime();
        log.info("worker {} (pid {} on {}) runs partition {} ids {}..{}{}", self.workerId(), self.pid(), self.host(), what,
                found.getExecutionContext().get("minId"), found.getExecutionContext().get("maxId"),
                claim.takenOver() ? ", taken over from a lost worker" : "");
        StepExecution result = null;
        JobSynchronizationManager.register(found.getJobExecution());
        try {
            result = handler.handle(request);
        } finally {
            JobSynchronizationManager.release();
            String status = result == null ? "FAILED" : result.getStatus().name();
            long items = result == null ? 0 : result.getWriteCount();
            try {
                store.finish(claim.claimId(), status, items);
            } catch (RuntimeException e) {
                log.warn("could not record the end of partition {}: {}", what, e.toString());
            }
            log.info("worker {} ran partition {}: {}, {} items in {} s", self.workerId(), what, status, items,
                    String.format("%.1f", (System.nanoTime() - started) / 1e9));
        }
    }

    /** A holder on this host whose process is gone: its partition can be taken at once, without waiting for the timeout. */
    private boolean deadOnThisHost(WorkerStore.Holder h) {
        if (!h.host().equals(self.host())) return false;
        return ProcessHandle.of(h.pid()).map(p -> !p.isAlive() || zombie(h.pid())).orElse(true);
    }

    /** A killed process whose parent has not reaped it yet still "is alive" to ProcessHandle; Linux says Z. */
    private static boolean zombie(long pid) {
        try {
            String stat = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/" + pid + "/stat"));
            int close = stat.lastIndexOf(')');
            return close > 0 && close + 2 < stat.length() && stat.charAt(close + 2) == 'Z';
        } catch (java.io.IOException | RuntimeException e) {
            return false;
        }
    }
}
