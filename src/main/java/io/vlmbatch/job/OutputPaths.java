package io.vlmbatch.job;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Checks a run's output files before any inference: the export step runs last, so a CSV path that is
 * a folder, or whose folder cannot be made, would otherwise fail only after every image was asked.
 * Each output must be a file or not exist yet, its nearest existing ancestor must be a writable folder,
 * and no two outputs may be one file.
 */
public final class OutputPaths {
    private OutputPaths() {}

    /** The rendered outputs of one run by field (output.csv, output.jsonl, output.documents), absent ones left out. */
    public static Map<String, Path> resolve(JobDefinition def, RunParameters params) {
        Map<String, Path> out = new LinkedHashMap<>();
        put(out, "output.csv", def, params, def.csv());
        put(out, "output.jsonl", def, params, def.jsonl());
        put(out, "output.documents", def, params, def.documents());
        return out;
    }

    private static void put(Map<String, Path> out, String field, JobDefinition def, RunParameters params, String template) {
        if (template == null) return;
        try {
            out.put(field, def.baseDir().resolve(params.render(template, def.name())).normalize());
        } catch (IllegalArgumentException e) { // a {{ params.x }} without its --param x=..., or a path no file system takes
            throw new JobFileException(def.file(), line(def.file(), field), field, e.getMessage());
        }
    }

    /** @throws JobFileException naming the file, the line of the field and what is wrong with the path */
    public static void check(JobDefinition def, RunParameters params) {
        Map<String, Path> outputs = resolve(def, params);
        Map<Path, String> seen = new LinkedHashMap<>();
        for (Map.Entry<String, Path> e : outputs.entrySet()) {
            String problem = problem(e.getValue());
            String earlier = seen.putIfAbsent(e.getValue(), e.getKey());
            if (problem == null && earlier != null) problem = e.getValue() + " is also " + earlier;
            if (problem != null) throw new JobFileException(def.file(), line(def.file(), e.getKey()), e.getKey(), problem);
        }
    }

    /** What makes the path unusable as an output file, or null when it is fine. */
    static String problem(Path file) {
        if (Files.isDirectory(file)) return file + " is a folder; name a file";
        if (Files.exists(file) && !Files.isRegularFile(file)) return file + " is not a regular file";
        if (Files.exists(file) && !Files.isWritable(file)) return file + " is not writable";
        Path dir = file.getParent();
        while (dir != null && !Files.exists(dir)) dir = dir.getParent();
        if (dir == null) return "no folder of " + file + " exists";
        if (!Files.isDirectory(dir)) return "cannot create the folder " + file.getParent() + ": " + dir + " is a file";
        if (!Files.isWritable(dir)) return "cannot write in " + dir + " (permission denied)";
        return null;
    }

    /** The line of the field's key in the job file (the `output:` line when not found), for the message. */
    static int line(Path file, String field) {
        String key = field.substring(field.indexOf('.') + 1);
        Pattern keyPattern = Pattern.compile("(^|[\\s{,])" + Pattern.quote(key) + "\\s*:");
        try {
            List<String> lines = Files.readAllLines(file);
            int outputLine = 0;
            for (int i = 0; i < lines.size(); i++) {
                if (outputLine == 0 && lines.get(i).startsWith("output")) outputLine = i + 1;
                if (outputLine > 0 && keyPattern.matcher(lines.get(i)).find()) return i + 1;
            }
            return Math.max(outputLine, 1);
        } catch (IOException e) {
            return 1;
        }
    }
}
