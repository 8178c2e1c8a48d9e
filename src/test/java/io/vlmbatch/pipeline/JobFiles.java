package io.vlmbatch.pipeline;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Job files the integration tests write next to their images. */
final class JobFiles {
    private JobFiles() {}

    /** Two tasks (a caption and a classification) over images/, asking the given server. */
    static Path write(Path dir, String name, String baseUrl, int chunkSize, int partitions, int retries) throws IOException {
        return withInference(dir, name, "base_url: \"%s\", concurrency: 8, retries: %d, backoff_ms: 100, timeout_s: 10"
                .formatted(baseUrl, retries), chunkSize, partitions);
    }

    /** The same job with the given inference settings (the inside of a YAML flow mapping). */
    static Path withInference(Path dir, String name, String inference, int chunkSize, int partitions) throws IOException {
        Path file = dir.resolve(name + ".yaml");
        Files.writeString(file, """
                name: %s
                source: { folder: images }
                tasks:
                  - { name: caption, template: describe, max_tokens: 8 }
                  - { name: kind, template: classify, labels: [photo, document, chart] }
                output: { csv: "out/%s.csv" }
                inference: { %s }
                run: { chunk_size: %d, partitions: %d }
                """.formatted(name, name, inference, chunkSize, partitions));
        return file;
    }
}
