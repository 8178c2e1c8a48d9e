package io.vlmbatch.archive;

/** Turns an exception from a parser into a one-line reason. */
final class Problems {

    private Problems() {}

    /** The most specific message in the cause chain; an EOF without message reads as "unexpected end of data". */
    static String describe(Throwable e) {
        String message = null;
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof java.io.EOFException && (t.getMessage() == null || t.getMessage().isBlank())) {
                return "unexpected end of data";
            }
            if (t.getMessage() != null && !t.getMessage().isBlank()) {
                message = t.getMessage();
            }
        }
        return message != null ? message : e.getClass().getSimpleName();
    }
}
