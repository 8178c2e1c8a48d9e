package io.vlmbatch.cli;

import io.vlmbatch.config.CoreConfig;
import io.vlmbatch.run.Errors;
import io.vlmbatch.web.ServeConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.springframework.boot.SpringApplication;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.event.ContextClosedEvent;

/**
 * `vlm-batch serve`: the scheduler, the REST API and the web UI in one process, until it is stopped
 * (Ctrl-C / SIGTERM). Only this command starts a web server; the others keep
 * spring.main.web-application-type=none.
 */
final class ServeCommand {
    private ServeCommand() {}

    static int run(Invocation inv) {
        List<String> spring = new ArrayList<>(List.of("--spring.main.web-application-type=servlet"));
        spring.addAll(inv.springArgs());
        SpringApplication app = new SpringApplication(CoreConfig.class, ServeConfig.class);
        app.setRegisterShutdownHook(true);
        CountDownLatch closed = new CountDownLatch(1);
        app.addListeners(e -> {
            if (e instanceof ContextClosedEvent) closed.countDown();
        });
        ConfigurableApplicationContext ctx;
        try {
            ctx = app.run(spring.toArray(String[]::new));
        } catch (Exception e) {
            System.err.println("error: " + Errors.rootMessage(e));
            return Main.EXIT_FAILED;
        }
        String host = ctx.getEnvironment().getProperty("server.address", "127.0.0.1");
        String url = "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + ctx.getEnvironment().getProperty("local.server.port");
        System.out.println("vlm-batch serve: " + url + " (Ctrl-C stops it)");
        try {
            closed.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return 0;
    }
}
