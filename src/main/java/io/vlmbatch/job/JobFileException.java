package io.vlmbatch.job;

import java.nio.file.Path;

/** A job file that cannot be used; the message names the file, the line and the field at fault. */
public class JobFileException extends RuntimeException {
    private final Path file;
    private final int line;
    private final String field;

    public JobFileException(Path file, int line, String field, String problem) {
        super(file + ":" + line + ": " + (field == null || field.isEmpty() ? "" : field + ": ") + problem);
        this.file = file;
        this.line = line;
        this.field = field;
    }

    public Path file() { return file; }
    public int line() { return line; }
    public String field() { return field; }
}
