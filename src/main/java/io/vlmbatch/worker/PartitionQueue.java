package io.vlmbatch.worker;

import java.util.regex.Pattern;
import org.springframework.amqp.core.Queue;
import org.springframework.amqp.core.QueueBuilder;
import org.springframework.core.env.Environment;

/**
 * The one queue partition requests travel through, declared the same way by managers and workers: durable,
 * so requests survive a broker restart (they are sent persistent). vlm.worker.queue names it (default
 * vlm.partitions): managers and workers of one deployment must agree on it.
 */
public final class PartitionQueue {
    public static final String DEFAULT_NAME = "vlm.partitions";
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9._-]{1,200}");

    private PartitionQueue() {}

    public static Queue declare(Environment env) {
        String name = env.getProperty("vlm.worker.queue", DEFAULT_NAME);
        if (!NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("vlm.worker.queue must be 1-200 letters, digits, '.', '_' or '-', got '" + name + "'");
        }
        return QueueBuilder.durable(name).build();
    }
}
