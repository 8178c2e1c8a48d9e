package io.vlmbatch.run;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.RunParameters;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.batch.core.job.DefaultJobKeyGenerator;
import org.springframework.batch.core.job.parameters.JobParameters;

/** Run inputs in JobParameters: the identity stays as earlier releases wrote it; the job file and --sets round-trip. */
class RunKeysTest {
    private static final RunParameters RUN = new RunParameters(LocalDate.of(2026, 5, 1), Map.of("shard", "a&b=c"));

    private static Path job(Path dir) throws Exception {
        Path file = dir.resolve("odd name ü & #1.yaml");
        Files.writeString(file, """
                name: keys
                source: { folder: images }
                tasks:
                  - { name: caption, template: describe, max_tokens: 8 }
                inference: { base_url: "http://127.0.0.1:9/v1" }
                """);
        return file;
    }

    @Test
    void theJobFileAndHostileSetsDoNotChangeTheRunsIdentityAndRoundTrip(@TempDir Path dir) throws Exception {
        Path file = job(dir);
        JobDefinition def = io.vlmbatch.job.JobFileLoader.load(file);
        List<String> sets = List.of("tasks.caption.max_tokens=7", "inference.model=x&y=%41\n\"'; DROP TABLE vlm_run; --",
                "inference.base_url=http://127.0.0.1:9/v1?a=1&b=2");
        JobParameters launched = RunKeys.launchParameters(def, sets, RUN);

        DefaultJobKeyGenerator keys = new DefaultJobKeyGenerator();
        assertThat(keys.generateKey(launched)).isEqualTo(keys.generateKey(RunKeys.jobParameters(RUN)));
        assertThat(launched.getString(RunKeys.JOB_FILE)).isEqualTo(file.toAbsolutePath().normalize().toString());
        assertThat(RunKeys.sets(launched.getString(RunKeys.JOB_SETS))).isEqualTo(sets);
        assertThat(RunKeys.runParameters(launched)).isEqualTo(RUN);

        JobDefinition bound = RunKeys.definition(launched);
        assertThat(bound.tasks().getFirst().maxTokens()).isEqualTo(7);
        assertThat(bound.inference().baseUrl()).isEqualTo("http://127.0.0.1:9/v1?a=1&b=2");
    }

    @Test
    void noSetsNoParameterAndAPreviousDateOnlyWhenItIsNotTheDayBefore(@TempDir Path dir) throws Exception {
        JobDefinition def = io.vlmbatch.job.JobFileLoader.load(job(dir));
        assertThat(RunKeys.launchParameters(def, List.of(), RUN).getString(RunKeys.JOB_SETS)).isNull();
        assertThat(RunKeys.launchParameters(def, List.of(), RUN).getLocalDate(RunKeys.PREV_DATE)).isNull();
        RunParameters weekly = new RunParameters(RUN.logicalDate(), RUN.params(), RUN.logicalDate().minusDays(7));
        assertThat(RunKeys.runParameters(RunKeys.launchParameters(def, List.of(), weekly))).isEqualTo(weekly);
    }

    @Test
    void setsTooLongForBatchsColumnAreRefusedAndARunWithoutJobFileSaysHowToRestartIt(@TempDir Path dir) throws Exception {
        JobDefinition def = io.vlmbatch.job.JobFileLoader.load(job(dir));
        assertThatThrownBy(() -> RunKeys.launchParameters(def, List.of("inference.model=" + "%".repeat(1000)), RUN))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("too long");
        assertThatThrownBy(() -> RunKeys.definition(RunKeys.jobParameters(RUN)))
                .hasMessageContaining("job.file").hasMessageContaining("restart it with its job file");
    }
}
