package io.vlmbatch.web;

import org.springframework.http.HttpStatus;

/** An API error with its HTTP status; the message is shown to the user as it is. */
public class ApiException extends RuntimeException {
    private final HttpStatus status;

    public ApiException(HttpStatus status, String message) {
        super(message);
        this.status = status;
    }

    public HttpStatus status() { return status; }

    public static ApiException notFound(String what) { return new ApiException(HttpStatus.NOT_FOUND, what); }

    public static ApiException bad(String what) { return new ApiException(HttpStatus.BAD_REQUEST, what); }
}
