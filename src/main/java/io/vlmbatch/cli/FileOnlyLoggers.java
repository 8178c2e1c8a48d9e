package io.vlmbatch.cli;

import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.filter.Filter;
import ch.qos.logback.core.spi.FilterReply;

/**
 * Keeps Spring Batch's own log lines off the terminal (they stay in the log file): it logs each failure of
 * each chunk, partition and step, while the command prints the run's outcome and its causes once, itself.
 */
public final class FileOnlyLoggers extends Filter<ILoggingEvent> {
    @Override
    public FilterReply decide(ILoggingEvent event) {
        return event.getLoggerName().startsWith("org.springframework.batch.") ? FilterReply.DENY : FilterReply.NEUTRAL;
    }
}
