package io.vlmbatch.cli;

/** A command line that cannot be understood (exit code 2). */
public class UsageException extends RuntimeException {
    public UsageException(String message) {
        super(message);
    }
}
