package io.vlmbatch.cli;

import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.filter.Filter;
import ch.qos.logback.core.spi.FilterReply;

/**
 * Keeps the log lines of Spring Batch and of the RabbitMQ clients (Spring AMQP, amqp-client) off the
 * terminal; they stay in the log file. Batch logs each failure of each chunk, partition and step, while the
 * command prints the run's outcome and its causes once, itself. The RabbitMQ clients log every reconnection
 * attempt, while the worker says once that the broker is away and once that it is back
 * (BrokerConnectionReporter).
 */
public final class FileOnlyLoggers extends Filter<ILoggingEvent> {
    @Override
    public FilterReply decide(ILoggingEvent event) {
        String name = event.getLoggerName();
        return name.startsWith("org.springframework.batch.") || name.startsWith("org.springframework.amqp.")
                || name.startsWith("com.rabbitmq.") ? FilterReply.DENY : FilterReply.NEUTRAL;
    }
}
