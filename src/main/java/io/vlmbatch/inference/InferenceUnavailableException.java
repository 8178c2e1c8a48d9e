package io.vlmbatch.inference;

/**
 * The server could not be reached or kept failing (connection errors, timeouts, 429, 5xx) through every
 * retry. Not an answer about the image: the chunk rolls back and the step fails, so `restart` can
 * redo the chunk once the server is back.
 */
public class InferenceUnavailableException extends RuntimeException {
    public InferenceUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
