package io.vlmbatch.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.time.LocalDate;
import org.junit.jupiter.api.Test;

class CommandLineTest {
    @Test
    void run() {
        Invocation i = CommandLine.parse(new String[] {"run", "jobs/x.yaml", "--date", "2026-05-01", "--param", "a=1",
                "--param=b=x=y", "--model", "/m"});
        assertThat(i.command()).isEqualTo("run");
        assertThat(i.jobFile()).isEqualTo(Path.of("jobs/x.yaml"));
        assertThat(i.date()).isEqualTo(LocalDate.of(2026, 5, 1));
        assertThat(i.params()).containsEntry("a", "1").containsEntry("b", "x=y");
        assertThat(i.model()).isEqualTo(Path.of("/m"));
        assertThat(CommandLine.parse(new String[] {"run", "j.yaml"}).date()).isEqualTo(LocalDate.now());
    }

    @Test
    void restartStatusExport() {
        assertThat(CommandLine.parse(new String[] {"restart", "j.yaml", "--execution", "42"}).executionId()).isEqualTo(42L);
        assertThat(CommandLine.parse(new String[] {"status"}).jobName()).isNull();
        assertThat(CommandLine.parse(new String[] {"status", "nightly"}).jobName()).isEqualTo("nightly");
        assertThat(CommandLine.parse(new String[] {"status", "jobs/n.yaml"}).jobFile()).isEqualTo(Path.of("jobs/n.yaml"));
        assertThat(CommandLine.parse(new String[] {"export", "j.yaml", "--date", "2026-01-01", "--csv", "o.csv"}).csv())
                .isEqualTo(Path.of("o.csv"));
        assertThat(CommandLine.parse(new String[] {"export", "j.yaml", "--date", "2026-01-01", "--jsonl", "o.jsonl"}).jsonl())
                .isEqualTo(Path.of("o.jsonl"));
    }

    @Test
    void mistakesAreUsageErrors() {
        assertThatThrownBy(() -> CommandLine.parse(new String[] {})).isInstanceOf(UsageException.class);
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"run"})).hasMessageContaining("exactly one job file");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"run", "j.yaml", "--date", "01/02/2026"})).hasMessageContaining("YYYY-MM-DD");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"restart", "j.yaml"})).hasMessageContaining("--date");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"export", "j.yaml"})).hasMessageContaining("--csv").hasMessageContaining("--jsonl");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"run", "j.yaml", "--jsonl", "o.jsonl"})).hasMessageContaining("only for export");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"run", "j.yaml", "--param", "novalue"})).hasMessageContaining("key=value");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"run", "j.yaml", "--frob", "1"})).hasMessageContaining("unknown option");
    }
}
