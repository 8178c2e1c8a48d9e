package io.vlmbatch.cli;

import io.vlmbatch.config.CoreConfig;
import io.vlmbatch.config.WorkerConfig;
import io.vlmbatch.worker.PartitionQueue;
import io.vlmbatch.worker.WorkerHeartbeat;

/**
 * `vlm-batch worker`: executes infer partitions sent by the managers of remote runs, until it is stopped
 * (Ctrl-C / SIGTERM: it marks itself stopped, so a partition it held is taken by another worker at once).
 */
final class WorkerCommand {
    private WorkerCommand() {}

    static int run(Invocation inv) {
        return UntilStopped.run(inv, "none", ctx -> {
            var env = ctx.getEnvironment();
            return "vlm-batch worker " + ctx.getBean(WorkerHeartbeat.class).workerId() + ": taking partitions from queue "
                    + env.getProperty("vlm.worker.queue", PartitionQueue.DEFAULT_NAME) + " on " + env.getProperty("spring.rabbitmq.host", "localhost")
                    + ":" + env.getProperty("spring.rabbitmq.port", "5672") + " (Ctrl-C stops it)";
        }, CoreConfig.class, WorkerConfig.class);
    }
}
