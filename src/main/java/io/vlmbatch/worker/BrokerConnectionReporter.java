package io.vlmbatch.worker;

import com.rabbitmq.client.ShutdownSignalException;
import io.vlmbatch.run.Errors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.amqp.rabbit.connection.Connection;
import org.springframework.amqp.rabbit.connection.ConnectionListener;

/**
 * One line when the worker cannot reach the broker or loses it, and one when it is connected again. The
 * listener container retries every few seconds by itself and logs each attempt; those lines go to the log
 * file only (FileOnlyLoggers), so an operator reads the state, not a retry loop.
 */
public final class BrokerConnectionReporter implements ConnectionListener {
    private static final Logger log = LoggerFactory.getLogger(BrokerConnectionReporter.class);
    private final String broker;
    private boolean away;

    /** @param broker host:port as the operator configured it */
    public BrokerConnectionReporter(String broker) {
        this.broker = broker;
    }

    @Override
    public synchronized void onCreate(Connection connection) {
        if (away) log.info("RabbitMQ at {} answers again: taking partition requests", broker);
        away = false;
    }

    @Override
    public synchronized void onFailed(Exception e) {
        if (!away) log.warn("cannot reach RabbitMQ at {}: {} (retrying until it answers)", broker, Errors.rootMessage(e));
        away = true;
    }

    @Override
    public synchronized void onShutDown(ShutdownSignalException signal) {
        if (signal.isInitiatedByApplication()) return;
        if (!away) log.warn("lost RabbitMQ at {}: {} (reconnecting)", broker, signal.getMessage());
        away = true;
    }
}
