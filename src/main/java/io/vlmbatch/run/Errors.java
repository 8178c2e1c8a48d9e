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

    /**
     * Whether the failure is the database connection going away (SQLSTATE class 08, or the driver's or pool's
     * connection exceptions): what was committed is kept, and the same command works again once PostgreSQL answers.
     */
    public static boolean lostDatabase(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (c instanceof java.sql.SQLTransientConnectionException || c instanceof java.sql.SQLNonTransientConnectionException) return true;
            if (c instanceof java.sql.SQLException sql && sql.getSQLState() != null && sql.getSQLState().startsWith("08")) return true;
        }
        return false;
    }

    /**
     * The lines a failed run prints: one per distinct cause, its innermost message. Each partition of a step
     * fails with the same cause, wrapped by Spring Batch ("Unable to process chunk"), and the manager step adds
     * a failure of its own that names no cause ("Partition handler returned an unsuccessful step"): that one
     * is left out when a cause is known.
     */
    public static java.util.List<String> distinctCauses(java.util.List<Throwable> failures) {
        java.util.Set<String> causes = new java.util.LinkedHashSet<>();
        java.util.Set<String> framework = new java.util.LinkedHashSet<>();
        for (Throwable t : failures) {
            Throwable root = t;
            while (root.getCause() != null && root.getCause() != root) root = root.getCause();
            String line = root.getMessage() != null ? root.getMessage() : rootMessage(t);
            boolean summary = root == t && t.getClass().getName().startsWith("org.springframework.batch.");
            (summary ? framework : causes).add(line);
        }
        if (causes.isEmpty()) causes.addAll(framework);
        return java.util.List.copyOf(causes);
    }
}
