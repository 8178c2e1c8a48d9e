package io.vlmbatch.source;

/** A source that is badly specified or cannot be read (missing folder, bad manifest row, S3 error). */
public class SourceException extends RuntimeException {

    public SourceException(String message) {
        super(message);
    }

    public SourceException(String message, Throwable cause) {
        super(message, cause);
    }
}
