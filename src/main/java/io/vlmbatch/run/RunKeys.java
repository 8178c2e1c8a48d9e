package io.vlmbatch.run;

import io.vlmbatch.job.RunParameters;
import java.time.LocalDate;
import java.util.Map;
import java.util.TreeMap;
import org.springframework.batch.core.job.parameters.JobParameters;
import org.springframework.batch.core.job.parameters.JobParametersBuilder;

/**
 * How a run's identity maps to Spring Batch job parameters, in both directions: "date" plus one
 * "param.k" per --param. They identify the job instance, so their form must not change: databases made
 * by earlier releases hold runs keyed by them.
 */
public final class RunKeys {
    static final String DATE = "date";
    static final String PARAM_PREFIX = "param.";

    private RunKeys() {}

    public static JobParameters jobParameters(RunParameters p) {
        JobParametersBuilder b = new JobParametersBuilder().addLocalDate(DATE, p.logicalDate());
        p.params().forEach((k, v) -> b.addString(PARAM_PREFIX + k, v));
        return b.toJobParameters();
    }

    public static LocalDate logicalDate(JobParameters jp) {
        return jp.getLocalDate(DATE);
    }

    public static RunParameters runParameters(JobParameters jp) {
        Map<String, String> params = new TreeMap<>();
        jp.parameters().forEach(param -> {
            if (param.name().startsWith(PARAM_PREFIX)) params.put(param.name().substring(PARAM_PREFIX.length()), String.valueOf(param.value()));
        });
        return new RunParameters(logicalDate(jp), params);
    }
}
