package io.vlmbatch.cli;

import io.vlmbatch.run.Errors;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.function.Function;
import org.springframework.boot.SpringApplication;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.event.ContextClosedEvent;

/**
 * The long-running commands (serve, worker): start a Spring context, print one line saying what it does,
 * and block until the context closes (Ctrl-C / SIGTERM run the shutdown hook, which closes it).
 */
final class UntilStopped {
    private UntilStopped() {}

    /**
     * Exit code 0 once the context has closed; EXIT_FAILED, with the root cause on stderr, when it does not start.
     * Only the root context's close ends the wait: a child context closing would otherwise end the command early.
     */
    static int run(Invocation inv, String webApplicationType, Function<ConfigurableApplicationContext, String> startedLine,
                   Class<?>... sources) {
        List<String> spring = new ArrayList<>(List.of("--spring.main.web-application-type=" + webApplicationType));
        spring.addAll(inv.springArgs());
        SpringApplication app = new SpringApplication(sources);
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
        System.out.println(startedLine.apply(ctx));
        try {
            closed.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return 0;
    }
}
