package io.vlmbatch.inference;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A prompt with {{variables}}: {{labels}} (the task's labels, comma-separated), {{file_name}},
 * {{item_key}}, {{uri}}, and any metadata field of the item (manifest columns) by its name.
 */
public final class PromptTemplate {
    public static final List<String> BUILT_IN = List.of("describe", "ocr", "classify");
    private static final Pattern VAR = Pattern.compile("\\{\\{\\s*([A-Za-z_][A-Za-z0-9_.-]*)\\s*}}");

    private final String source;
    private final String text;

    public PromptTemplate(String source, String text) {
        this.source = source;
        this.text = text.strip();
    }

    /** One of the templates shipped in the jar (prompts/NAME.txt). */
    public static PromptTemplate builtIn(String name) {
        String resource = "prompts/" + name + ".txt";
        try (InputStream in = PromptTemplate.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) throw new IllegalArgumentException("no built-in template '" + name + "' (known: " + BUILT_IN + ")");
            return new PromptTemplate(name, new String(in.readAllBytes(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static PromptTemplate fromFile(Path file) throws IOException {
        return new PromptTemplate(file.toString(), Files.readString(file, StandardCharsets.UTF_8));
    }

    public String source() { return source; }
    public String text() { return text; }

    public Set<String> variables() {
        Set<String> names = new LinkedHashSet<>();
        Matcher m = VAR.matcher(text);
        while (m.find()) names.add(m.group(1));
        return names;
    }

    /** Fills every variable; a variable without a value is an error naming it (the item fails with it). */
    public String render(Map<String, String> values) {
        Matcher m = VAR.matcher(text);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String value = values.get(m.group(1));
            if (value == null) {
                throw new IllegalArgumentException("template " + source + " uses {{" + m.group(1)
                        + "}} but the item has no such field");
            }
            m.appendReplacement(out, Matcher.quoteReplacement(value));
        }
        m.appendTail(out);
        return out.toString();
    }
}
