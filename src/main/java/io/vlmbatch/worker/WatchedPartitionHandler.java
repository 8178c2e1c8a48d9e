package io.vlmbatch.worker;

import java.time.Duration;
import java.time.LocalDateTime;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.batch.core.BatchStatus;
import org.springframework.batch.core.ExitStatus;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.batch.core.step.StepExecution;
import org.springframework.batch.integration.partition.MessageChannelPartitionHandler;
import org.springframework.batch.integration.partition.StepExecutionRequest;
import org.springframework.dao.OptimisticLockingFailureException;
import org.springframework.integration.core.MessagingTemplate;
import org.springframework.integration.support.MessageBuilder;

/**
 * The manager's side of remote partitioning: Spring Batch's MessageChannelPartitionHandler sends one request
 * per partition and polls the shared job repository until every partition ended; beside it, a watch finds
 * partitions whose worker went silent for run.worker_timeout (WorkerStore) and sends them again, or, once a
 * partition was lost MAX_LOSSES times, marks it FAILED so the run ends FAILED and `restart` resumes it.
 * It also sends again a partition that no worker ever took while the queue is empty: its request was lost
 * with the broker. A request sent twice is harmless: a worker runs a partition only after claiming it.
 * Each round it also closes the claims of partitions that ended without their worker recording it, so the
 * run's worker page shows them settled while the other partitions go on.
 */
public final class WatchedPartitionHandler extends MessageChannelPartitionHandler {
    private static final Logger log = LoggerFactory.getLogger(WatchedPartitionHandler.class);
    static final int MAX_LOSSES = 3;

    private final WorkerStore store;
    private final JobRepository repository;
    private final MessagingTemplate requests;
    private final String stepName;
    private final Duration workerTimeout;
    private final LongSupplier queuedRequests;

    /**
     * @param queuedRequests requests waiting in the workers' queue (negative when the broker cannot say)
     */
    public WatchedPartitionHandler(WorkerStore store, JobRepository repository, MessagingTemplate requests, String stepName,
                                   Duration workerTimeout, int gridSize, Duration pollInterval, LongSupplier queuedRequests) {
        this.store = store;
        this.repository = repository;
        this.requests = requests;
        this.stepName = stepName;
        this.workerTimeout = workerTimeout;
        this.queuedRequests = queuedRequests;
        setStepName(stepName);
        setJobRepository(repository);
        setMessagingOperations(requests);
        setGridSize(gridSize);
        setPollInterval(pollInterval.toMillis());
    }

    @Override
    protected Set<StepExecution> doHandle(StepExecution manager, Set<StepExecution> partitions) throws Exception {
        List<Long> ids = partitions.stream().map(StepExecution::getId).sorted().toList();
        ScheduledExecutorService watch = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("partition-watch").factory());
        Map<Long, Long> unclaimedSince = new HashMap<>();
        long every = Math.max(500, Math.min(5_000, workerTimeout.toMillis() / 4));
        watch.scheduleWithFixedDelay(() -> check(ids, unclaimedSince), every, every, TimeUnit.MILLISECONDS);
        log.info("sending {} partitions of {} to the workers", ids.size(), manager.getJobExecution().getJobInstance().getJobName());
        try {
            return super.doHandle(manager, partitions);
        } finally {
            watch.shutdownNow();
            try {
                settleEnded(ids);
            } catch (RuntimeException e) {
                log.warn("could not close the claims of ended partitions: {}", e.toString());
            }
        }
    }

    /** One round of the watch; package-private so that a test runs a round without waiting for its timer. */
    void check(List<Long> ids, Map<Long, Long> unclaimedSince) {
        try {
            settleEnded(ids);
            for (Long id : store.takeLost(ids, workerTimeout)) {
                int losses = store.losses(id);
                if (losses >= MAX_LOSSES) {
                    fail(id, "lost with its worker " + losses + " times");
                } else {
                    log.warn("partition {} was lost with its worker (silent for {} s): sending it again", id, workerTimeout.toSeconds());
                    send(id);
                }
            }
            List<Long> unclaimed = store.unclaimed(ids);
            unclaimedSince.keySet().retainAll(unclaimed);
            long now = System.nanoTime();
            for (Long id : unclaimed) unclaimedSince.putIfAbsent(id, now);
            if (unclaimed.isEmpty() || queuedRequests.getAsLong() != 0) return;
            for (Long id : unclaimed) {
                if (now - unclaimedSince.get(id) >= workerTimeout.toNanos()) {
                    log.warn("partition {} was never taken by a worker and the queue is empty (its request was lost with the broker?): "
                            + "sending it again", id);
                    send(id);
                    unclaimedSince.put(id, now);
                }
            }
        } catch (RuntimeException e) {
            // the broker or the database may be briefly away; the next round tries again
            log.warn("checking the remote partitions failed (retrying): {}", e.toString());
        }
    }

    private void settleEnded(List<Long> ids) {
        int settled = store.settleEnded(ids);
        if (settled > 0) log.info("{} partitions ended without their worker recording it (killed just after, or about to record it): closed", settled);
    }

    private void send(long stepExecutionId) {
        requests.send(MessageBuilder.withPayload(new StepExecutionRequest(stepName, stepExecutionId)).build());
    }

    private void fail(long stepExecutionId, String why) {
        StepExecution s = repository.getStepExecution(stepExecutionId);
        if (s == null || !s.getStatus().isRunning()) return;
        s.setStatus(BatchStatus.FAILED);
        s.setExitStatus(ExitStatus.FAILED.addExitDescription("partition " + s.getStepName() + " " + why));
        s.setEndTime(LocalDateTime.now());
        try {
            repository.update(s);
            log.error("partition {} {}: marked FAILED; `restart` resumes it", s.getStepName(), why);
        } catch (OptimisticLockingFailureException e) {
            log.info("partition {} moved meanwhile: not failed", s.getStepName());
        }
    }
}
