package io.vlmbatch.source;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.Reader;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * One JSON object per line; blank lines are skipped. Non-string values become their JSON text
 * ({@code 3}, {@code true}, {@code ["a","b"]}); nulls are left out.
 */
final class JsonlManifestReader {

    private static final JsonMapper JSON = JsonMapper.builder().build();

    private JsonlManifestReader() {}

    static void read(Reader reader, String name, Consumer<ManifestRow> rows) throws IOException {
        BufferedReader in = new BufferedReader(Utf8Bom.skip(reader));
        long line = 0;
        for (String text = in.readLine(); text != null; text = in.readLine()) {
            line++;
            if (text.isBlank()) {
                continue;
            }
            JsonNode node;
            try {
                node = JSON.readTree(text);
            } catch (JacksonException e) {
                throw new SourceException(name + " line " + line + ": invalid JSON: " + e.getOriginalMessage(), e);
            }
            if (node == null || !node.isObject()) {
                throw new SourceException(name + " line " + line + ": expected a JSON object, got "
                        + (node == null ? "nothing" : node.getNodeType().name().toLowerCase()));
            }
            Map<String, String> fields = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> field : node.properties()) {
                JsonNode value = field.getValue();
                if (value.isNull()) {
                    continue;
                }
                fields.put(field.getKey(), value.isString() ? value.stringValue() : value.toString());
            }
            rows.accept(new ManifestRow(line, fields));
        }
    }
}
