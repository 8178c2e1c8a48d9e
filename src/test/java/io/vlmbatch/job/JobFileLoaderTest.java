package io.vlmbatch.job;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vlmbatch.VlmBatchApplication;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.time.LocalDate;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JobFileLoaderTest {
    @TempDir
    Path dir;

    private Path write(String yaml) throws Exception {
        Path f = dir.resolve("job.yaml");
        Files.writeString(f, yaml);
        return f;
    }

    @Test
    void theShippedSampleJobLoads() {
        JobDefinition def = JobFileLoader.load(Path.of("jobs/samples.yaml"));
        assertThat(def.name()).isEqualTo("samples");
        assertThat(def.source().folder()).isEqualTo("../samples");
        assertThat(def.taskNames()).containsExactly("caption", "text", "kind");
        assertThat(def.tasks().get(2).labels()).containsExactly("photo", "document", "chart", "screenshot");
        assertThat(def.inference().embedded()).isTrue();
        assertThat(def.csv()).isEqualTo("../out/samples.csv");
    }

    @Test
    void defaultsAndOverrides() throws Exception {
        Path f = write("""
                name: nightly
                source: { s3: "s3://bucket/uploads/{{ ds }}/", include: "*.jpg", endpoint: "http://localhost:9000", path_style: true }
                resize: { max_side: 896 }
                tasks:
                  - { name: caption, template: describe, temperature: 0.2, seed: 7 }
                  - { name: custom, prompt: "What is in {{file_name}} ({{ item_key }})?" }
                inference: { base_url: "http://gpu:8000/v1", model: glm-4v-9b, concurrency: 64, retries: 2 }
                run: { chunk_size: 32, partitions: 4 }
                """);
        JobDefinition def = JobFileLoader.load(f);
        assertThat(def.source().s3()).isEqualTo("s3://bucket/uploads/{{ ds }}/");
        assertThat(def.source().s3Settings().pathStyle()).isTrue();
        assertThat(def.source().include()).containsExactly("*.jpg");
        assertThat(def.resize().maxSide()).isEqualTo(896);
        assertThat(def.resize().maxPixels()).isEqualTo(100_000_000L);
        assertThat(def.tasks().get(0).maxTokens()).isEqualTo(256);
        assertThat(def.tasks().get(0).temperature()).isEqualTo(0.2);
        assertThat(def.tasks().get(0).seed()).isEqualTo(7L);
        assertThat(def.tasks().get(1).template().variables()).containsExactly("file_name", "item_key");
        assertThat(def.inference().embedded()).isFalse();
        assertThat(def.inference().concurrency()).isEqualTo(64);
        assertThat(def.run()).isEqualTo(new RunSpec(32, 4));
        assertThat(def.csv()).isNull();
    }

    @Test
    void templateFileIsRelativeToTheJobFile() throws Exception {
        Files.writeString(dir.resolve("mine.txt"), "Is {{file_name}} blurry? {{labels}}");
        Path f = write("""
                name: t
                source: { folder: . }
                tasks:
                  - { name: blur, template: mine.txt, labels: [yes, no] }
                """);
        JobDefinition def = JobFileLoader.load(f);
        assertThat(def.tasks().getFirst().template().text()).isEqualTo("Is {{file_name}} blurry? {{labels}}");
        assertThat(def.tasks().getFirst().isChoice()).isTrue();
    }

    @Test
    void malformedYamlNamesFileAndLine() throws Exception {
        Path f = write("""
                name: broken
                source:
                  folder: x
                 tasks: [
                """);
        assertThatThrownBy(() -> JobFileLoader.load(f))
                .isInstanceOf(JobFileException.class)
                .hasMessageStartingWith(f + ":4: malformed YAML");
    }

    @Test
    void unknownFieldNamesLineAndField() throws Exception {
        Path f = write("""
                name: x
                source: { folder: . }
                tasks:
                  - { name: a, template: describe }
                  - { name: b, template: ocr, max_tokenz: 5 }
                """);
        assertThatThrownBy(() -> JobFileLoader.load(f))
                .isInstanceOf(JobFileException.class)
                .hasMessageStartingWith(f + ":5: tasks[1].max_tokenz: unknown field")
                .satisfies(e -> assertThat(((JobFileException) e).line()).isEqualTo(5));
    }

    @Test
    void eachRuleNamesItsField() throws Exception {
        assertError("""
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                """, ":1: name: is required");
        assertError("""
                name: x
                source: { folder: ., s3: "s3://b/p" }
                tasks: [ { name: a, template: describe } ]
                """, ":2: source: needs exactly one of folder, manifest or s3");
        assertError("""
                name: x
                source: { folder: . }
                tasks:
                  - { name: kind, template: classify }
                """, ":4: tasks[0].labels: the classify template needs labels");
        assertError("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe }, { name: a, template: ocr } ]
                """, ":3: tasks[1].name: duplicate task name");
        assertError("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: nosuch } ]
                """, ":3: tasks[0].template: neither a built-in template");
        assertError("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                run:
                  chunk_size: many
                """, ":5: run.chunk_size: must be a whole number");
        assertError("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                inference: { base_url: "ftp://x" }
                """, ":4: inference.base_url: must be \"embedded\" or an http(s):// URL");
        assertError("""
                name: x
                source: { folder: . }
                tasks: []
                """, ":3: tasks: must be a non-empty list");
        assertError("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                output:
                  csv: "out/{{ date }}.csv"
                """, ":5: output.csv: unknown variable {{ date }}");
        assertError("", ":1: the file is empty");
    }

    @Test
    void baseUrlTakesAListOfEndpointsAndEmbeddedTakesGpus() throws Exception {
        JobDefinition pool = JobFileLoader.load(write("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                inference:
                  base_url: [ "http://gpu1:8000", "http://gpu2:8000/v1" ]
                  down_after_s: 30
                """));
        assertThat(pool.inference().baseUrls()).containsExactly("http://gpu1:8000", "http://gpu2:8000/v1");
        assertThat(pool.inference().embedded()).isFalse();
        assertThat(pool.inference().downAfter()).isEqualTo(java.time.Duration.ofSeconds(30));
        assertThat(JobFileLoader.load(write("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                inference: { base_url: embedded, gpus: [0, 1, 3] }
                """)).inference().gpus()).containsExactly(0, 1, 3);
        var all = JobFileLoader.load(write("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                inference: { gpus: all }
                """)).inference();
        assertThat(all.allGpus()).isTrue();
        assertThat(all.embedded()).isTrue();
    }

    @Test
    void badEndpointListsAndGpusAreRefusedWithTheirLine() throws Exception {
        String head = """
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                """;
        assertError(head + "inference: { base_url: [] }\n", ":4: inference.base_url: must be \"embedded\", an http(s):// URL or a non-empty list");
        assertError(head + "inference: { base_url: [ \"http://a:1\", \"http://a:1/v1/\" ] }\n", ":4: inference.base_url: lists http://a:1/v1/ twice");
        assertError(head + "inference: { base_url: [ \"http://a:1\", embedded ] }\n", ":4: inference.base_url: must be \"embedded\" or an http(s):// URL, got \"embedded\"");
        assertError(head + "inference: { base_url: [ \"http://a:1\", [ \"http://b:1\" ] ] }\n", ":4: inference.base_url: must list URLs, one value each");
        // hostile: a URL with a space and a newline in it, an endless host, a javascript: scheme
        assertError(head + "inference: { base_url: [ \"http://a:1/x y\" ] }\n", ":4: inference.base_url: must be");
        assertError(head + "inference: { base_url: \"http://a:1/\\nHost: evil\" }\n", ":4: inference.base_url: must be");
        assertError(head + "inference: { base_url: \"javascript:alert(1)\" }\n", ":4: inference.base_url: must be");
        Path longUrl = write(head + "inference: { base_url: \"http://" + "a".repeat(3000) + "\" }\n");
        assertThatThrownBy(() -> JobFileLoader.load(longUrl)).hasMessageContaining(":4: inference.base_url: must be")
                .hasMessageEndingWith("...\"").message().hasSizeLessThan(400);
        StringBuilder many = new StringBuilder(head + "inference:\n  base_url:\n");
        for (int i = 0; i < 300; i++) many.append("    - \"http://h").append(i).append(":8000\"\n");
        assertError(many.toString(), ":6: inference.base_url: lists more than 256 URLs");
        assertError(head + "inference: { base_url: \"http://a:1\", gpus: [0] }\n", ":4: inference.gpus: applies only to base_url: embedded");
        assertError(head + "inference: { gpus: [0, 0] }\n", ":4: inference.gpus: lists GPU 0 twice");
        assertError(head + "inference: { gpus: [-1] }\n", ":4: inference.gpus: must list GPU numbers (0-999), got \"-1\"");
        assertError(head + "inference: { gpus: [\"0; rm -rf /\"] }\n", ":4: inference.gpus: must list GPU numbers");
        assertError(head + "inference: { gpus: some }\n", ":4: inference.gpus: must be \"all\" or a non-empty list");
        assertError(head + "inference: { gpus: [] }\n", ":4: inference.gpus: must be \"all\" or a non-empty list");
        assertError(head + "inference: { down_after_s: 0 }\n", ":4: inference.down_after_s:");
    }

    @Test
    void aDuplicatedKeyNamesBothLines() throws Exception {
        assertError("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                source: { folder: elsewhere }
                """, ":4: source: duplicated key (first on line 2, again on line 4)");
        assertError("""
                name: x
                source: { folder: . }
                tasks:
                  - name: a
                    template: describe
                    max_tokens: 10
                    max_tokens: 20
                """, ":7: tasks[0].max_tokens: duplicated key (first on line 6, again on line 7)");
        assertError("""
                name: x
                schedule: "@daily"
                scheduling:
                  retries: 1
                  retries: 3
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                """, ":5: scheduling.retries: duplicated key (first on line 4, again on line 5)");
    }

    @Test
    void memberAndPageArePromptVariablesOfEveryItemFilledFromItsLineage() throws Exception {
        JobDefinition def = JobFileLoader.load(write("""
                name: x
                source: { folder: . }
                tasks:
                  - { name: a, prompt: "Page {{ page }} of {{member}} in {{file_name}}" }
                """));
        TaskSpec task = def.tasks().getFirst();
        assertThat(task.template().variables()).containsExactly("page", "member", "file_name");
        io.vlmbatch.store.WorkItem page = new io.vlmbatch.store.WorkItem(1, 1, "box.zip!/letters/1903.pdf#p2",
                "file:///scans/box.zip", Map.of(), "letters/1903.pdf", 2);
        io.vlmbatch.store.WorkItem image = new io.vlmbatch.store.WorkItem(2, 1, "cat.jpg", "file:///scans/cat.jpg", Map.of());
        // a hostile member name is text in the prompt, never a template again
        io.vlmbatch.store.WorkItem hostile = new io.vlmbatch.store.WorkItem(3, 1, "b.zip!/x", "file:///scans/b.zip", Map.of(),
                "{{uri}}/$1\\..<b>.jpg", null);
        assertThat(io.vlmbatch.ledger.ItemPrompts.render(page, def.tasks())).containsExactly("Page 2 of letters/1903.pdf in box.zip");
        assertThat(io.vlmbatch.ledger.ItemPrompts.render(image, def.tasks())).containsExactly("Page  of  in cat.jpg");
        assertThat(io.vlmbatch.ledger.ItemPrompts.render(hostile, def.tasks()))
                .containsExactly("Page  of {{uri}}/$1\\..<b>.jpg in b.zip");
    }

    @Test
    void anUnknownPromptVariableFailsAtLoadTime() throws Exception {
        assertError("""
                name: x
                source: { folder: . }
                tasks:
                  - { name: a, template: describe }
                  - { name: b, prompt: "Is {{ file_nmae }} blurry?" }
                """, ":5: tasks[1].prompt: unknown variable {{file_nmae}} in b (inline) (known: file_name, item_key, uri, member, page, labels");
        Files.writeString(dir.resolve("mine.txt"), "Taken by {{ camera }}?");
        assertError("""
                name: x
                source: { s3: "s3://bucket/in/" }
                tasks:
                  - name: a
                    template: mine.txt
                """, ":5: tasks[0].template: unknown variable {{camera}} in " + dir.resolve("mine.txt"));
        // With a manifest, other names are its columns: known only once the manifest is read, per item.
        Path f = write("""
                name: x
                source: { manifest: photos.csv }
                tasks: [ { name: a, template: mine.txt } ]
                """);
        assertThat(JobFileLoader.load(f).tasks().getFirst().template().variables()).containsExactly("camera");
    }

    @Test
    void booleansFollowOneRuleEverywhere() throws Exception {
        Path f = write("""
                name: x
                schedule: "@daily"
                scheduling: { catchup: yes }
                source: { folder: ., recursive: off }
                tasks: [ { name: a, template: describe } ]
                """);
        JobDefinition def = JobFileLoader.load(f);
        assertThat(def.schedule().catchup()).isTrue();
        assertThat(def.source().recursive()).isFalse();
        assertError("""
                name: x
                source: { folder: ., recursive: "1" }
                tasks: [ { name: a, template: describe } ]
                """, ":2: source.recursive: must be true or false, got \"1\"");
        assertError("""
                name: x
                schedule: "@daily"
                scheduling: { catchup: "sometimes" }
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                """, ":3: scheduling.catchup: must be true or false, got \"sometimes\"");
    }

    @Test
    void setOverridesMeetTheFilesOwnRules() throws Exception {
        Path f = write("""
                name: x
                source: { folder: . }
                tasks:
                  - { name: caption, template: describe, max_tokens: 8 }
                  - { name: kind, template: classify, labels: [a, b] }
                inference: { base_url: "http://gpu:8000/v1" }
                """);
        JobDefinition def = JobFileLoader.load(f, List.of("tasks.caption.max_tokens=512", "inference.base_url=http://other:9000/v1",
                "tasks.kind.labels=[a, b, c]", "run.reuse=false"));
        assertThat(def.tasks().get(0).maxTokens()).isEqualTo(512);
        assertThat(def.tasks().get(1).labels()).containsExactly("a", "b", "c");
        assertThat(def.inference().baseUrl()).isEqualTo("http://other:9000/v1");
        assertThat(def.run().reuse()).isFalse();
        assertThat(JobFileLoader.load(f).tasks().get(0).maxTokens()).as("the file itself is unchanged").isEqualTo(8);

        assertThatThrownBy(() -> JobFileLoader.load(f, List.of("tasks.caption.max_tokens=lots")))
                .hasMessageContaining("--set tasks[0].max_tokens: must be a whole number");
        assertThatThrownBy(() -> JobFileLoader.load(f, List.of("tasks.nosuch.max_tokens=5")))
                .hasMessageContaining("no task named \"nosuch\"");
        assertThatThrownBy(() -> JobFileLoader.load(f, List.of("tasks.caption.max_tokenz=5")))
                .hasMessageContaining("unknown field");
        assertThatThrownBy(() -> JobFileLoader.load(f, List.of("novalue"))).hasMessageContaining("key=value");
        assertThatThrownBy(() -> JobFileLoader.load(f, List.of("tasks.caption.max_tokens=[unclosed")))
                .hasMessageContaining("not valid YAML");
        assertThatThrownBy(() -> JobFileLoader.load(f, List.of("../../etc.passwd=1"))).hasMessageContaining("plain name");
        assertThatThrownBy(() -> JobFileLoader.load(f, List.of("inference.base_url=file:///etc/passwd")))
                .hasMessageContaining("http(s)://");
        String bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                + "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]";
        assertThatThrownBy(() -> JobFileLoader.load(f, List.of("tasks.caption.max_tokens=" + bomb))).isInstanceOf(JobFileException.class);
    }

    @Test
    void reuseIsOnUnlessTheJobTurnsItOff() throws Exception {
        assertThat(JobFileLoader.load(write("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                """)).run().reuse()).isTrue();
        assertThat(JobFileLoader.load(write("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                run: { reuse: false }
                """)).run().reuse()).isFalse();
        assertError("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                run: { reuse: "'; DROP TABLE vlm_result; --" }
                """, ":4: run.reuse: must be true or false");
    }

    @Test
    void workersAreLocalUnlessTheJobAsksForRemoteOnes() throws Exception {
        RunSpec local = JobFileLoader.load(write("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                """)).run();
        assertThat(local.remote()).isFalse();
        RunSpec remote = JobFileLoader.load(write("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                run: { workers: remote, partitions: 2000, worker_timeout: 90s }
                """)).run();
        assertThat(remote.remote()).isTrue();
        assertThat(remote.partitions()).isEqualTo(2000);
        assertThat(remote.workerTimeout()).isEqualTo(java.time.Duration.ofSeconds(90));
        assertError("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                run: { workers: "rabbit; rm -rf /" }
                """, ":4: run.workers: must be local or remote, got \"rabbit; rm -rf /\"");
        assertError("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                run: { partitions: 2000 }
                """, ":4: run.partitions: must be between 1 and 256, got 2000");
        assertError("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                run:
                  workers: remote
                  partitions: 1000000
                """, ":6: run.partitions: must be between 1 and 10000");
        assertError("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                run: { worker_timeout: 2m }
                """, ":4: run.worker_timeout: applies only with workers: remote");
        assertError("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                run: { workers: remote, worker_timeout: 1s }
                """, ":4: run.worker_timeout: must be between 5s and 1d, got 1s");
        assertError("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                run: { workers: remote, worker_timeout: 99999999999999999999d }
                """, ":4: run.worker_timeout: is too large");
    }

    @Test
    void csvRawIsOffUnlessAskedFor() throws Exception {
        assertThat(JobFileLoader.load(write("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                output: { csv: out.csv }
                """)).csvRaw()).isFalse();
        assertThat(JobFileLoader.load(write("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                output: { csv: out.csv, csv_raw: true }
                """)).csvRaw()).isTrue();
        assertError("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                output: { csv: out.csv, csv_raw: "=1+1" }
                """, ":4: output.csv_raw: must be true or false, got \"=1+1\"");
    }

    @Test
    void hostileYamlIsRefusedNotExpanded() throws Exception {
        StringBuilder laughs = new StringBuilder("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (int i = 1; i < 12; i++) {
            laughs.append("a").append(i).append(": &a").append(i).append(" [");
            for (int j = 0; j < 9; j++) laughs.append(j == 0 ? "" : ", ").append("*a").append(i - 1);
            laughs.append("]\n");
        }
        Path bomb = write(laughs.toString());
        assertThatThrownBy(() -> JobFileLoader.load(bomb)).isInstanceOf(JobFileException.class)
                .hasMessageContaining("malformed YAML").hasMessageContaining("aliases");
        Path deep = write("name: x\nsource: " + "[".repeat(5000) + "]".repeat(5000) + "\n");
        assertThatThrownBy(() -> JobFileLoader.load(deep)).isInstanceOf(JobFileException.class)
                .hasMessageStartingWith(deep + ":").hasMessageContaining("malformed YAML: Nesting Depth exceeded");
        assertError("""
                name: x
                source: { folder: . }
                tasks: [ { name: a, template: describe } ]
                ? [complex, key]
                : 1
                """, ":4: keys must be plain names");
    }

    private void assertError(String yaml, String expected) throws Exception {
        Path f = write(yaml);
        assertThatThrownBy(() -> JobFileLoader.load(f)).isInstanceOf(JobFileException.class).hasMessageContaining(f + expected);
    }

    @Test
    void badJobFileExitsWithTwoBeforeAnythingStarts() throws Exception {
        Path f = write("name: [unclosed\n");
        assertThat(VlmBatchApplication.run(new String[] {"run", f.toString()})).isEqualTo(2);
        assertThat(VlmBatchApplication.run(new String[] {"run", dir.resolve("missing.yaml").toString()})).isEqualTo(2);
        assertThat(VlmBatchApplication.run(new String[] {"frobnicate"})).isEqualTo(2);
        Path needsParam = dir.resolve("p.yaml");
        Files.writeString(needsParam, """
                name: p
                source: { folder: "shards/{{ params.shard }}" }
                tasks: [ { name: a, template: describe } ]
                """);
        assertThat(VlmBatchApplication.run(new String[] {"run", needsParam.toString()})).isEqualTo(2);
    }

    @Test
    void pathTemplatesRenderPerRun() {
        RunParameters p = new RunParameters(LocalDate.of(2026, 3, 9), Map.of("shard", "07"));
        assertThat(p.render("s3://b/{{ ds }}/{{ds_nodash}}/{{ params.shard }}/{{ job }}-{{ prev_ds }}", "nightly"))
                .isEqualTo("s3://b/2026-03-09/20260309/07/nightly-2026-03-08");
        assertThat(p.paramsKey()).isEqualTo("shard=07");
        assertThatThrownBy(() -> p.render("{{ params.missing }}", "j")).hasMessageContaining("params.missing");
    }
}
