package io.vlmbatch.template;

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
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Text with {{ name }} variables: the one template engine of the job file, for path variables
 * ({{ ds }}, {{ params.x }}...) and prompt variables ({{ file_name }}, {{ labels }}, manifest columns)
 * alike. Values are inserted verbatim, never interpreted again, so a value holding "{{", "$1" or a
 * backslash stays as it is.
 */
public final class TextTemplate {
    /** The prompts shipped in the jar (prompts/NAME.txt), stripped of surrounding blank space like prompt files. */
    public static final List<String> BUILT_IN = List.of("describe", "ocr", "classify");
    // Names may hold '.' (params.x) and '-' (manifest columns such as camera-id); anything else
    // between braces is plain text.
    private static final Pattern VAR = Pattern.compile("\\{\\{\\s*([A-Za-z_][A-Za-z0-9_.-]*)\\s*}}");

    private final String source;
    private final String text;

    /** @param source what the text is, for error messages: a file, "task x (inline)", a field */
    public TextTemplate(String source, String text) {
        this.source = source;
        this.text = text;
    }

    public static TextTemplate builtIn(String name) {
        String resource = "prompts/" + name + ".txt";
        try (InputStream in = TextTemplate.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) throw new IllegalArgumentException("no built-in template '" + name + "' (known: " + BUILT_IN + ")");
            return new TextTemplate(name, new String(in.readAllBytes(), StandardCharsets.UTF_8).strip());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static TextTemplate fromFile(Path file) throws IOException {
        return new TextTemplate(file.toString(), Files.readString(file, StandardCharsets.UTF_8).strip());
    }

    public String source() { return source; }

    public String text() { return text; }

    /** The variables used, in order of first use. */
    public Set<String> variables() {
        Set<String> names = new LinkedHashSet<>();
        Matcher m = VAR.matcher(text);
        while (m.find()) names.add(m.group(1));
        return names;
    }

    /** Fills every variable; a variable without a value is an error naming it and the template. */
    public String render(Map<String, String> values) {
        return render(values::get, name -> "template " + source + " uses {{" + name + "}} but the item has no such field");
    }

    /**
     * @param values      the value of a variable, or null when it has none
     * @param whenMissing the message of the IllegalArgumentException thrown for a variable without a value
     */
    public String render(Function<String, String> values, Function<String, String> whenMissing) {
        Matcher m = VAR.matcher(text);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String value = values.apply(m.group(1));
            if (value == null) throw new IllegalArgumentException(whenMissing.apply(m.group(1)));
            m.appendReplacement(out, Matcher.quoteReplacement(value));
        }
        m.appendTail(out);
        return out.toString();
    }
}
