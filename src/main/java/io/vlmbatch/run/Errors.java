package io.vlmbatch.run;

/** One line for a failure, made of the messages of its cause chain (what a user of the CLI or the API reads). */
public final class Errors {
    private Errors() {}

    public static String rootMessage(Throwable t) {
        Throwable c = t;
        StringBuilder b = new StringBuilder(String.valueOf(t.getMessage()));
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
            if (c.getMessage() != null && !b.toString().contains(c.getMessage())) b.append(": ").append(c.getMessage());
        }
        return b.toString();
    }
}
