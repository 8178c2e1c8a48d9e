package io.vlmbatch.pipeline;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Job files the tests write next to their images (a folder images/ beside the job file). */
public final class JobFiles {
    private JobFiles() {}

    /** A caption and a classification: two requests per image. */
    public static final List<String> CAPTION_AND_KIND = List.of(
            "{ name: caption, template: describe, max_tokens: 8 }",
            "{ name: kind, template: classify, labels: [photo, document, chart] }");

    /** Two tasks (a caption and a classification) over images/, asking the given server. */
    static Path write(Path dir, String name, String baseUrl, int chunkSize, int partitions, int retries) throws IOException {
        return withInference(dir, name, "base_url: \"%s\", concurrency: 8, retries: %d, backoff_ms: 100, timeout_s: 10"
                .formatted(baseUrl, retries), chunkSize, partitions);
    }

    /** The same job with the given inference settings (the inside of a YAML flow mapping). */
    static Path withInference(Path dir, String name, String inference, int chunkSize, int partitions) throws IOException {
        return job(dir, name, CAPTION_AND_KIND, "out/" + name + ".csv", inference, "chunk_size: %d, partitions: %d".formatted(chunkSize, partitions));
    }

    /**
     * dir/name.yaml: the tasks (YAML flow mappings) over images/, results to csv; inference and run are
     * the insides of their YAML flow mappings.
     */
    public static Path job(Path dir, String name, List<String> tasks, String csv, String inference, String run) throws IOException {
        Path file = dir.resolve(name + ".yaml");
        StringBuilder yaml = new StringBuilder();
        yaml.append("name: ").append(name).append('\n');
        yaml.append("source: { folder: images }\n");
        yaml.append("tasks:\n");
        for (String task : tasks) yaml.append("  - ").append(task).append('\n');
        yaml.append("output: { csv: \"").append(csv).append("\" }\n");
        yaml.append("inference: { ").append(inference).append(" }\n");
        yaml.append("run: { ").append(run).append(" }\n");
        Files.writeString(file, yaml.toString());
        return file;
    }
}
