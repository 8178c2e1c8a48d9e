package io.vlmbatch.cli;

import io.vlmbatch.config.CoreConfig;
import io.vlmbatch.config.WorkerConfig;
import io.vlmbatch.run.Errors;
import io.vlmbatch.worker.WorkerHeartbeat;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.springframework.boot.SpringApplication;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.event.ContextClosedEvent;

/**
 * `vlm-batch worker`: executes infer partitions sent by the managers of remote runs, until it is stopped
 * (Ctrl-C / SIGTERM: it marks itself stopped, so a partition it held is taken by another worker at once).
 */
final class WorkerCommand {
    private WorkerCommand() {}

    static int run(Invocation inv) {
        List<String> spring = new ArrayList<>(List.of("--spring.main.web-application-type=none"));
        spring.addAll(inv.springArgs());
        SpringApplication app = new SpringApplication(CoreConfig.class, WorkerConfig.class);
        app.setRegisterShutdownHook(true);
        CountDownLatch closed = new CountDownLatch(1);
        app.addListeners(e -> {
            if (e instanceof ContextClosedEvent c && c.getApplicationContext().getParent() == null) closed.countDown();
        });
        ConfigurableApplicationContext ctx;
        try {
            ctx = app.run(spring.toArray(String[]::new));
        } catch (Exception e) {
            System.err.println("error: " + Errors.rootMessage(e));
            return Main.EXIT_FAILED;
        }
        var env = ctx.getEnvironment();
        System.out.println("vlm-batch worker " + ctx.getBean(WorkerHeartbeat.class).workerId() + ": taking partitions from queue "
                + env.getProperty("vlm.worker.queue", io.vlmbatch.worker.PartitionQueue.DEFAULT_NAME) + " on " + env.getProperty("spring.rabbitmq.host", "localhost") + ":"
                + env.getProperty("spring.rabbitmq.port", "5672") + " (Ctrl-C stops it)");
        try {
            closed.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return 0;
    }
}
