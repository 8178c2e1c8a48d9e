package io.vlmbatch.run;

import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.JobFileLoader;
import io.vlmbatch.job.RunParameters;
import java.net.URLDecoder;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.springframework.batch.core.job.parameters.JobParameters;
import org.springframework.batch.core.job.parameters.JobParametersBuilder;

/**
 * How a run maps to Spring Batch job parameters, in both directions. Identifying: "date" plus one
 * "param.k" per --param; they key the job instance, so their form must not change (databases made by
 * earlier releases hold runs keyed by them). Non-identifying, read by the job's late-bound beans:
 * "job.file" (the job file, absolute), "job.sets" (retry's --set overrides, absent when none) and
 * "job.prev_date" (the schedule's previous logical date, absent when it is the day before).
 */
public final class RunKeys {
    static final String DATE = "date";
    static final String PARAM_PREFIX = "param.";
    public static final String JOB_FILE = "job.file";
    public static final String JOB_SETS = "job.sets";
    public static final String PREV_DATE = "job.prev_date";
    /** Batch stores a parameter's value in a column of this many characters. */
    static final int MAX_VALUE_CHARS = 2500;

    private RunKeys() {}

    /** The identifying parameters alone: enough to find a run's job instance. */
    public static JobParameters jobParameters(RunParameters p) {
        JobParametersBuilder b = new JobParametersBuilder().addLocalDate(DATE, p.logicalDate());
        p.params().forEach((k, v) -> b.addString(PARAM_PREFIX + k, v));
        return b.toJobParameters();
    }

    /** What a run is launched with: its identity plus where its job file is and how it is overridden. */
    public static JobParameters launchParameters(JobDefinition def, List<String> sets, RunParameters p) {
        JobParametersBuilder b = new JobParametersBuilder(jobParameters(p));
        withJobFile(b, def.file(), sets);
        if (!p.previousLogicalDate().equals(p.logicalDate().minusDays(1))) {
            b.addLocalDate(PREV_DATE, p.previousLogicalDate(), false);
        }
        return b.toJobParameters();
    }

    /**
     * A restart's parameters: those of the execution it resumes, with the job file as given now (runs
     * started by earlier releases carry none; a restart re-reads the file in any case).
     */
    public static JobParameters relaunchParameters(JobParameters previous, Path jobFile) {
        JobParametersBuilder b = new JobParametersBuilder(previous);
        b.addString(JOB_FILE, jobFile.toAbsolutePath().normalize().toString(), false);
        return b.toJobParameters();
    }

    private static void withJobFile(JobParametersBuilder b, Path file, List<String> sets) {
        b.addString(JOB_FILE, file.toAbsolutePath().normalize().toString(), false);
        if (sets != null && !sets.isEmpty()) {
            String encoded = String.join("&", sets.stream().map(s -> URLEncoder.encode(s, StandardCharsets.UTF_8)).toList());
            if (encoded.length() > MAX_VALUE_CHARS) {
                throw new IllegalArgumentException("the --set overrides are too long to record with the run ("
                        + encoded.length() + " characters encoded, at most " + MAX_VALUE_CHARS + ")");
            }
            b.addString(JOB_SETS, encoded, false);
        }
    }

    /** The job file of a launched run, read now with its --set overrides (the one JobFileLoader). */
    public static JobDefinition definition(JobParameters jp) {
        String file = jp.getString(JOB_FILE);
        if (file == null) {
            throw new IllegalStateException("the run's parameters name no " + JOB_FILE + " (a run started by an earlier release:"
                    + " restart it with its job file)");
        }
        return JobFileLoader.load(Path.of(file), sets(jp.getString(JOB_SETS)));
    }

    static List<String> sets(String encoded) {
        if (encoded == null || encoded.isEmpty()) return List.of();
        return Arrays.stream(encoded.split("&", -1)).map(s -> URLDecoder.decode(s, StandardCharsets.UTF_8)).toList();
    }

    public static LocalDate logicalDate(JobParameters jp) {
        return jp.getLocalDate(DATE);
    }

    public static RunParameters runParameters(JobParameters jp) {
        Map<String, String> params = new TreeMap<>();
        jp.parameters().forEach(param -> {
            if (param.name().startsWith(PARAM_PREFIX)) params.put(param.name().substring(PARAM_PREFIX.length()), String.valueOf(param.value()));
        });
        return new RunParameters(logicalDate(jp), params, jp.getLocalDate(PREV_DATE));
    }
}
