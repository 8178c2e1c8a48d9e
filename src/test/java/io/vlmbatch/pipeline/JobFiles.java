package io.vlmbatch.pipeline;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Job files the integration tests write next to their images. */
final class JobFiles {
    private JobFiles() {}

    /** Two tasks (a caption and a classification) over images/, asking the given server. */
    static Path write(Path dir, String name, String baseUrl, int chunkSize, int partitions, int retries) throws IOException {
        Path file = dir.resolve(name + ".yaml");
        Files.writeString(file, """
                name: %s
                source: { folder: images }
                tasks:
                  - { name: caption, template: describe, max_tokens: 8 }
                  - { name: kind, template: classify, labels: [photo, document, chart] }
                output: { csv: "out/%s.csv" }
                inference: { base_url: "%s", concurrency: 8, retries: %d, backoff_ms: 100, timeout_s: 10 }
                run: { chunk_size: %d, partitions: %d }
                """.formatted(name, name, baseUrl, retries, chunkSize, partitions));
        return file;
    }
}
