package io.vlmbatch.worker;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.config.CoreConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.batch.core.BatchStatus;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.job.JobInstance;
import org.springframework.batch.core.job.parameters.JobParameters;
import org.springframework.batch.core.job.parameters.JobParametersBuilder;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.batch.core.step.StepExecution;
import org.springframework.batch.infrastructure.item.ExecutionContext;
import org.springframework.integration.core.MessagingTemplate;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.test.context.junit.jupiter.SpringJUnitConfig;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * The claim rule against the real job repository (embedded PostgreSQL): one worker per partition, a
 * request delivered twice or for an ended partition is dropped, a silent, stopped or dead holder loses it.
 */
@SpringJUnitConfig(classes = CoreConfig.class)
class WorkerStoreTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    @Autowired
    JobRepository repository;
    @Autowired
    JdbcTemplate jdbc;
    @Autowired
    PlatformTransactionManager tm;

    @BeforeAll
    static void dataDir() {
        System.setProperty("vlm.data.dir", Path.of("target", "worker-store-test", "data").toAbsolutePath().toString());
    }

    private WorkerStore store() {
        return new WorkerStore(jdbc, new TransactionTemplate(tm));
    }

    private List<StepExecution> partitions(int n) {
        JobParameters jp = new JobParametersBuilder().addString("test", Long.toString(System.nanoTime())).toJobParameters();
        JobInstance instance = repository.createJobInstance("worker-store-test", jp);
        JobExecution job = repository.createJobExecution(instance, jp, new ExecutionContext());
        return java.util.stream.IntStream.range(0, n).mapToObj(i -> {
            StepExecution s = repository.createStepExecution("infer-worker:p" + i, job);
            s.setStatus(BatchStatus.STARTED);
            repository.update(s);
            return s;
        }).toList();
    }

    @Test
    void oneWorkerPerPartitionAndARepeatedRequestIsDropped() {
        WorkerStore store = store();
        store.register("w1", "host-a", 101);
        store.register("w2", "host-b", 202);
        long p = partitions(1).getFirst().getId();

        WorkerStore.Claim first = store.claim(p, "w1", TIMEOUT, h -> false);
        assertThat(first).isInstanceOf(WorkerStore.Claim.Taken.class);
        assertThat(store.claim(p, "w2", TIMEOUT, h -> false)).isEqualTo(new WorkerStore.Claim.HeldBy("w1"));
        assertThat(store.claim(p, "w1", TIMEOUT, h -> false)).as("the same request again, to the same worker")
                .isEqualTo(new WorkerStore.Claim.HeldBy("w1"));

        store.finish(((WorkerStore.Claim.Taken) first).claimId(), "COMPLETED", 7);
        StepExecution done = repository.getStepExecution(p);
        done.setStatus(BatchStatus.COMPLETED);
        repository.update(done);
        assertThat(store.claim(p, "w2", TIMEOUT, h -> false)).isEqualTo(new WorkerStore.Claim.Finished("COMPLETED"));
        assertThat(store.claim(Long.MAX_VALUE, "w2", TIMEOUT, h -> false)).isEqualTo(new WorkerStore.Claim.Finished("MISSING"));
    }

    @Test
    void aSilentStoppedOrDeadHolderLosesItsPartition() {
        WorkerStore store = store();
        store.register("w3", "host-a", 303);
        store.register("w4", "host-b", 404);
        List<StepExecution> parts = partitions(3);
        long silent = parts.get(0).getId(), stopped = parts.get(1).getId(), dead = parts.get(2).getId();
        store.claim(silent, "w3", TIMEOUT, h -> false);
        jdbc.update("UPDATE vlm_worker SET last_seen = now() - interval '1 minute' WHERE worker_id = 'w3'");

        assertThat(store.takeLost(List.of(silent, stopped, dead), TIMEOUT)).as("the manager's watch").containsExactly(silent);
        assertThat(store.claim(silent, "w4", TIMEOUT, h -> false)).isInstanceOf(WorkerStore.Claim.Taken.class);
        assertThat(store.losses(silent)).isEqualTo(1);

        store.register("w5", "host-c", 505);
        store.claim(stopped, "w5", TIMEOUT, h -> false);
        store.stopped("w5");
        WorkerStore.Claim afterStop = store.claim(stopped, "w4", TIMEOUT, h -> false);
        assertThat(afterStop).isInstanceOf(WorkerStore.Claim.Taken.class);
        assertThat(((WorkerStore.Claim.Taken) afterStop).takenOver()).as("a stopped holder's claim ends LOST").isTrue();
        assertThat(store.claim(dead, "w4", TIMEOUT, h -> false)).as("never claimed").isInstanceOf(WorkerStore.Claim.Taken.class);
    }

    @Test
    void aHolderKnownDeadOnItsHostLosesItAtOnceAndTheRunShowsWhoDidWhat() {
        WorkerStore store = store();
        store.register("w6", "host-a", 606);
        store.register("w7", "host-a", 707);
        List<StepExecution> parts = partitions(2);
        long p = parts.getFirst().getId();
        store.claim(p, "w6", TIMEOUT, h -> false);
        WorkerStore.Claim taken = store.claim(p, "w7", TIMEOUT, h -> h.workerId().equals("w6"));
        assertThat(taken).isInstanceOf(WorkerStore.Claim.Taken.class);
        assertThat(((WorkerStore.Claim.Taken) taken).takenOver()).isTrue();
        store.finish(((WorkerStore.Claim.Taken) taken).claimId(), "COMPLETED", 12);
        StepExecution done = repository.getStepExecution(p);
        done.setStatus(BatchStatus.COMPLETED);
        repository.update(done);
        assertThat(store.unclaimed(List.of(p, parts.get(1).getId()))).containsExactly(parts.get(1).getId());

        long runId = parts.getFirst().getJobExecution().getJobInstance().getInstanceId();
        List<WorkerStore.WorkerRow> rows = store.workersOfRun(runId);
        assertThat(rows).extracting(WorkerStore.WorkerRow::workerId).containsExactly("w6", "w7");
        assertThat(rows.get(0).lost()).isEqualTo(1);
        assertThat(rows.get(0).partitions()).isZero();
        assertThat(rows.get(1).partitions()).isEqualTo(1);
        assertThat(rows.get(1).items()).isEqualTo(12);
    }

    @Test
    void aWorkerKilledBetweenItsPartitionsEndAndItsOwnRecordLeavesAClaimTheManagerCloses() {
        WorkerStore store = store();
        List<StepExecution> parts = bothClaimedFirstEnded(store, "w8", 808, 9);
        long ended = parts.get(0).getId(), running = parts.get(1).getId();

        assertThat(store.settleEnded(List.of(ended, running))).as("only the ended partition's claim").isEqualTo(1);
        assertClosedWhileTheOtherRuns(ended, 9, running);
        assertThat(store.settleEnded(List.of(ended, running))).as("settled once").isZero();
    }

    /** The manager's watch closes such a claim in its next round, while the run's other partitions go on. */
    @Test
    void aRoundOfTheManagersWatchClosesTheClaimOfAPartitionThatEndedWhileTheRunGoesOn() {
        WorkerStore store = store();
        List<StepExecution> parts = bothClaimedFirstEnded(store, "w9", 909, 4);
        long ended = parts.get(0).getId(), running = parts.get(1).getId();
        // nothing is lost or unclaimed here, so the round sends no request (the template has no channel)
        WatchedPartitionHandler handler = new WatchedPartitionHandler(store, repository, new MessagingTemplate(), "infer-worker",
                TIMEOUT, 2, Duration.ofSeconds(1), () -> 0);

        handler.check(List.of(ended, running), new HashMap<>());

        assertClosedWhileTheOtherRuns(ended, 4, running);
        long runId = parts.getFirst().getJobExecution().getJobInstance().getInstanceId();
        assertThat(store.workersOfRun(runId)).singleElement().satisfies(w -> {
            assertThat(w.partitions()).as("the worker page counts the settled partition").isEqualTo(1);
            assertThat(w.items()).isEqualTo(4);
        });
    }

    /**
     * Two partitions claimed by one new worker; Spring Batch has recorded the first one's end (COMPLETED, `items`
     * written) but the worker has not: it died, or is about to record it.
     */
    private List<StepExecution> bothClaimedFirstEnded(WorkerStore store, String worker, long pid, int items) {
        store.register(worker, "host-a", pid);
        List<StepExecution> parts = partitions(2);
        for (StepExecution p : parts) store.claim(p.getId(), worker, TIMEOUT, h -> false);
        StepExecution done = repository.getStepExecution(parts.getFirst().getId());
        done.setStatus(BatchStatus.COMPLETED);
        done.setWriteCount(items);
        done.setEndTime(java.time.LocalDateTime.now());
        repository.update(done);
        return parts;
    }

    private void assertClosedWhileTheOtherRuns(long ended, long items, long running) {
        assertThat(jdbc.queryForMap("SELECT status, items, ended_at IS NOT NULL AS closed FROM vlm_partition_run WHERE step_execution_id = ?", ended))
                .containsEntry("status", "COMPLETED").containsEntry("items", items).containsEntry("closed", true);
        assertThat(jdbc.queryForObject("SELECT status FROM vlm_partition_run WHERE step_execution_id = ?", String.class, running))
                .isEqualTo("RUNNING");
    }
}
