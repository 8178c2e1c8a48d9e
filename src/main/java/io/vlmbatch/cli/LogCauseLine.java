package io.vlmbatch.cli;

import ch.qos.logback.classic.pattern.ThrowableHandlingConverter;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.IThrowableProxy;

/**
 * A logged exception on the terminal: its messages, cause by cause, on the log line itself, and where the
 * stack trace is (the log file, see logback-spring.xml). Spring Batch logs every failed step with its trace;
 * for an expected failure (no inference endpoint answering, a database gone) that trace buried the one line
 * that says what to do.
 */
public final class LogCauseLine extends ThrowableHandlingConverter {
    @Override
    public String convert(ILoggingEvent event) {
        IThrowableProxy thrown = event.getThrowableProxy();
        if (thrown == null) return "";
        String logged = String.valueOf(event.getFormattedMessage());
        StringBuilder line = new StringBuilder();
        String lastType = null;
        for (IThrowableProxy c = thrown; c != null && c != c.getCause(); c = c.getCause()) {
            lastType = c.getClassName();
            String m = c.getMessage();
            if (m != null && !m.isBlank() && !logged.contains(m) && !line.toString().contains(m)) line.append(": ").append(m);
        }
        if (line.isEmpty() && lastType != null) line.append(": ").append(lastType.substring(lastType.lastIndexOf('.') + 1));
        String file = System.getProperty("LOG_FILE");
        if (file != null) line.append(" (stack trace in ").append(file).append(')');
        return line.toString();
    }
}
