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
    void plan() {
        Invocation i = CommandLine.parse(new String[] {"plan", "j.yaml", "--date", "2026-05-01", "--json"});
        assertThat(i.command()).isEqualTo("plan");
        assertThat(i.json()).isTrue();
        assertThat(CommandLine.parse(new String[] {"plan", "j.yaml"}).json()).isFalse();
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"run", "j.yaml", "--json"})).hasMessageContaining("unknown option --json");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"status", "--json"})).hasMessageContaining("unknown option --json");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"plan", "j.yaml", "--json=$(rm -rf /)"}))
                .hasMessageContaining("--json takes no value");
        Invocation r = CommandLine.parse(new String[] {"retry", "j.yaml", "--date", "2026-05-01", "--task", "caption",
                "--set", "tasks.caption.max_tokens=512", "--set=inference.base_url=http://h:1/v1"});
        assertThat(r.task()).isEqualTo("caption");
        assertThat(r.sets()).containsExactly("tasks.caption.max_tokens=512", "inference.base_url=http://h:1/v1");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"retry", "j.yaml"})).hasMessageContaining("retry needs --date");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"retry", "j.yaml", "--date", "2026-05-01", "--task", "../x"}))
                .hasMessageContaining("--task must be a task name");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"retry", "j.yaml", "--date", "2026-05-01", "--set", "novalue"}))
                .hasMessageContaining("key=value");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"run", "j.yaml", "--set", "a=1"})).hasMessageContaining("unknown option --set");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"plan", "j.yaml", "--date", "2026-13-45"})).hasMessageContaining("YYYY-MM-DD");
    }

    @Test
    void backfill() {
        Invocation i = CommandLine.parse(new String[] {"backfill", "j.yaml", "--from", "2026-03-01", "--to=2026-03-31", "--reprocess", "failed"});
        assertThat(i.command()).isEqualTo("backfill");
        assertThat(i.range()).isEqualTo(new Invocation.Range(LocalDate.of(2026, 3, 1), LocalDate.of(2026, 3, 31), "failed"));
        assertThat(CommandLine.parse(new String[] {"backfill", "j.yaml", "--from", "2026-03-01", "--to", "2026-03-01"}).range().reprocess())
                .isEqualTo("none");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"backfill", "j.yaml", "--from", "2026-03-01"}))
                .hasMessageContaining("needs --from and --to");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"backfill", "j.yaml", "--from", "2026-03-02", "--to", "2026-03-01"}))
                .hasMessageContaining("is before --from");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"backfill", "j.yaml", "--from", "2026-02-30", "--to", "2026-03-01"}))
                .hasMessageContaining("--from must be YYYY-MM-DD");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"backfill", "j.yaml", "--from", "x".repeat(10_000), "--to", "2026-03-01"}))
                .hasMessageContaining("--from must be YYYY-MM-DD").satisfies(e -> assertThat(e.getMessage()).hasSizeLessThan(200));
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"backfill", "j.yaml", "--from", "2026-03-01", "--to", "2026-03-01",
                "--reprocess", "all"})).hasMessageContaining("none, failed or completed");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"run", "j.yaml", "--from", "2026-03-01"})).hasMessageContaining("unknown option --from");
        assertThat(CommandLine.usage("backfill")).contains("--reprocess none|failed|completed").contains("max_active_runs").contains("day for a job without a schedule");
    }

    @Test
    void mistakesAreUsageErrors() {
        assertThatThrownBy(() -> CommandLine.parse(new String[] {})).isInstanceOf(UsageException.class);
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"run"})).hasMessageContaining("exactly one job file");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"run", "j.yaml", "--date", "01/02/2026"})).hasMessageContaining("YYYY-MM-DD");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"restart", "j.yaml"})).hasMessageContaining("--date");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"export", "j.yaml"})).hasMessageContaining("--csv").hasMessageContaining("--jsonl");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"run", "j.yaml", "--jsonl", "o.jsonl"})).hasMessageContaining("unknown option --jsonl for run");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"run", "j.yaml", "--param", "novalue"})).hasMessageContaining("key=value");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"run", "j.yaml", "--frob", "1"})).hasMessageContaining("unknown option");
    }

    @Test
    void serveIsACommandOfTheSameParser(@org.junit.jupiter.api.io.TempDir Path jobs) {
        Invocation i = CommandLine.parse(new String[] {"serve", "--port", "9090", "--host=0.0.0.0", "--jobs", jobs.toString(),
                "--model", "/m", "--inference-url", "http://x:8000/v1", "--vlm.scheduler.enabled=false"});
        assertThat(i.command()).isEqualTo("serve");
        assertThat(i.springArgs()).contains("--server.port=9090", "--server.address=0.0.0.0", "--vlm.jobs-dir=" + jobs,
                "--vlm.model-dir=/m", "--vlm.playground.base-url=http://x:8000/v1", "--vlm.scheduler.enabled=false");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"serve", "--port", "70000"})).hasMessageContaining("0..65535");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"serve", "--port", "x"})).hasMessageContaining("number");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"serve", "--jobs", "/no/such/dir"})).hasMessageContaining("not a folder");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"serve", "--inference-url", "file:///etc/passwd"}))
                .hasMessageContaining("http(s)://");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"serve", "--spring.foo"})).hasMessageContaining("=value");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"serve", "jobs/x.yaml"})).hasMessageContaining("no job file");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"run", "j.yaml", "--spring.x=1"})).hasMessageContaining("unknown option");
    }

    @Test
    void workerTakesItsSettingsAndRefusesHostileOnes() {
        Invocation i = CommandLine.parse(new String[] {"worker", "--concurrency", "4", "--queue=vlm.nightly", "--model", "/m",
                "--spring.rabbitmq.host=mq"});
        assertThat(i.command()).isEqualTo("worker");
        assertThat(i.jobFile()).isNull();
        assertThat(i.springArgs()).containsExactly("--vlm.worker.concurrency=4", "--vlm.worker.queue=vlm.nightly", "--spring.rabbitmq.host=mq",
                "--vlm.model-dir=" + Path.of("/m").toAbsolutePath());
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"worker", "jobs/x.yaml"})).hasMessageContaining("worker takes no job file");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"worker", "--concurrency", "0"})).hasMessageContaining("1..256");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"worker", "--concurrency", "1e9"})).hasMessageContaining("must be a number");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"worker", "--queue", "q; rm -rf /"})).hasMessageContaining("--queue must be");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"worker", "--queue", "x".repeat(201)})).hasMessageContaining("--queue must be");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"worker", "--date", "2026-01-01"})).hasMessageContaining("unknown option --date");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"worker", "--spring.rabbitmq.host"})).hasMessageContaining("needs =value");
    }

    @Test
    void forceIsAFlagOfRestartOnly() {
        assertThat(CommandLine.parse(new String[] {"restart", "j.yaml", "--date", "2026-01-01", "--force"}).force()).isTrue();
        assertThat(CommandLine.parse(new String[] {"restart", "j.yaml", "--date", "2026-01-01"}).force()).isFalse();
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"run", "j.yaml", "--force"})).hasMessageContaining("unknown option");
        assertThatThrownBy(() -> CommandLine.parse(new String[] {"restart", "j.yaml", "--date", "2026-01-01", "--force=yes"}))
                .hasMessageContaining("no value");
    }

    @Test
    void helpWorksOnEveryCommandAndExitsZero() {
        java.io.PrintStream stdout = System.out;
        for (String command : java.util.List.of("run", "restart", "status", "export", "serve")) {
            var out = new java.io.ByteArrayOutputStream();
            System.setOut(new java.io.PrintStream(out, true));
            try {
                // given after other words too: help wins over a missing job file or a bad option
                assertThat(Main.run(new String[] {command, "--help"})).as(command).isZero();
                assertThat(Main.run(new String[] {command, "x.yaml", "--frob", "-h"})).as(command).isZero();
            } finally {
                System.setOut(stdout);
            }
            assertThat(out.toString()).as(command).contains("usage: vlm-batch " + command);
        }
        assertThat(Main.run(new String[] {"--help"})).isZero();
        assertThat(Main.run(new String[] {"frobnicate", "--help"})).isEqualTo(Main.EXIT_USAGE);
    }
}
