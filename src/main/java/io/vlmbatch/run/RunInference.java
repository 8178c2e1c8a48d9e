package io.vlmbatch.run;

import io.vlmbatch.inference.EmbeddedInferenceServer;
import io.vlmbatch.inference.InferenceService;
import io.vlmbatch.inference.InferenceSpec;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.batch.core.job.DefaultJobKeyGenerator;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.job.parameters.JobParameters;

/**
 * The inference service of each run executing in this process, keyed by the run (job name and
 * identifying parameters). The launcher starts a run's service before anything of the run changes, so a
 * missing server, model or API key is reported first, and reads its summary afterwards; the run's
 * late-bound beans find it here. A run nobody launched here (a remote worker's partition, a test
 * starting the job directly) gets one on first use, closed when its job ends or with this registry.
 *
 * The embedded server is the process's shared one when there is one (serve: its runs and the
 * playground), else a new one per service, owned and stopped by it (a CLI run).
 */
public final class RunInference implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RunInference.class);

    private record Entry(InferenceService service, boolean launched) {}

    private final EmbeddedInferenceServer shared;
    private final Supplier<EmbeddedInferenceServer> perService;
    private final Map<String, Entry> runs = new ConcurrentHashMap<>();
    private final DefaultJobKeyGenerator keys = new DefaultJobKeyGenerator();

    /** @param shared the process's embedded server, or null to make one per service with {@code perService} */
    public RunInference(EmbeddedInferenceServer shared, Supplier<EmbeddedInferenceServer> perService) {
        this.shared = shared;
        this.perService = perService;
    }

    /** A new, unstarted service for {@code spec}; the caller closes it. */
    public InferenceService open(InferenceSpec spec) {
        if (shared != null) return new InferenceService(spec, shared, false);
        return new InferenceService(spec, perService.get(), true);
    }

    /** The launcher: starts the service of the run {@code jobName} + {@code jp}; close it with {@link #release}. */
    public InferenceService start(String jobName, JobParameters jp, InferenceSpec spec) throws Exception {
        InferenceService s = open(spec);
        try {
            s.start();
        } catch (Exception | LinkageError e) {
            s.close();
            throw e;
        }
        Entry old = runs.put(key(jobName, jp), new Entry(s, true));
        if (old != null) old.service().close();
        return s;
    }

    /** The started service of the run executing {@code execution}. */
    public InferenceService forRun(JobExecution execution, InferenceSpec spec) throws Exception {
        String key = key(execution.getJobInstance().getJobName(), execution.getJobParameters());
        Entry e = runs.get(key);
        if (e != null) return e.service();
        synchronized (this) {
            e = runs.get(key);
            if (e == null) {
                InferenceService s = open(spec);
                try {
                    s.start();
                } catch (Exception | LinkageError ex) {
                    s.close();
                    throw ex;
                }
                e = new Entry(s, false);
                runs.put(key, e);
            }
            return e.service();
        }
    }

    /** The end of a job: closes the service it opened itself (a launcher closes its own with release). */
    public void jobEnded(JobExecution execution) {
        String key = key(execution.getJobInstance().getJobName(), execution.getJobParameters());
        Entry e = runs.get(key);
        if (e != null && !e.launched() && runs.remove(key, e)) e.service().close();
    }

    public void release(String jobName, JobParameters jp) {
        Entry e = runs.remove(key(jobName, jp));
        if (e != null) e.service().close();
    }

    /** The services of the runs executing now (for metrics). */
    public List<InferenceService> running() {
        return runs.values().stream().map(Entry::service).toList();
    }

    private String key(String jobName, JobParameters jp) {
        return jobName + "#" + keys.generateKey(jp);
    }

    @Override
    public void close() {
        runs.values().forEach(e -> {
            try {
                e.service().close();
            } catch (RuntimeException ex) {
                log.warn("closing an inference service: {}", ex.toString());
            }
        });
        runs.clear();
    }
}
