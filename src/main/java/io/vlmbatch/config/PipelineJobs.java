package io.vlmbatch.config;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.springframework.batch.core.configuration.DuplicateJobException;
import org.springframework.batch.core.configuration.JobRegistry;
import org.springframework.batch.core.job.Job;
import org.springframework.batch.core.job.builder.JobBuilder;
import org.springframework.batch.core.listener.JobExecutionListener;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.batch.core.step.Step;

/**
 * The pipeline's Job per job file name, built from the shared steps: job instances are keyed by the
 * job's name, so each job file gets a Job of its own name, while what the steps do is bound late to the
 * run's job file (JobParameters job.file). One context can thus run any job file.
 */
public final class PipelineJobs {
    private final JobRepository repository;
    private final JobRegistry registry;
    private final List<JobExecutionListener> listeners;
    private final List<Step> steps;
    private final Map<String, Job> jobs = new ConcurrentHashMap<>();

    public PipelineJobs(JobRepository repository, JobRegistry registry, List<JobExecutionListener> listeners, List<Step> steps) {
        this.repository = repository;
        this.registry = registry;
        this.listeners = List.copyOf(listeners);
        this.steps = List.copyOf(steps);
    }

    public Job jobFor(String name) {
        return jobs.computeIfAbsent(name, n -> {
            JobBuilder b = new JobBuilder(n, repository);
            listeners.forEach(b::listener);
            var flow = b.start(steps.getFirst());
            steps.subList(1, steps.size()).forEach(flow::next);
            Job job = flow.build();
            try {
                registry.register(job); // JobOperator.stop looks the job up there
            } catch (DuplicateJobException e) {
                throw new IllegalStateException(e);
            }
            return job;
        });
    }
}
