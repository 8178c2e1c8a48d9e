package io.vlmbatch.web;

import io.vlmbatch.VlmBatchApplication;
import io.vlmbatch.run.Errors;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.springframework.boot.SpringApplication;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.event.ContextClosedEvent;

/**
 * `vlm-batch serve [--port 8080] [--host 127.0.0.1] [--jobs DIR] [--model DIR] [--inference-url URL]`:
 * the scheduler, the REST API and the web UI in one process, until it is stopped (Ctrl-C / SIGTERM).
 * Only this command starts a web server; the other commands keep spring.main.web-application-type=none.
 */
public final class ServeCommand {
    public static final String USAGE = """
            usage: vlm-batch serve [--port 8080] [--host 127.0.0.1] [--jobs DIR] [--model DIR] [--inference-url URL]
              --host         address to bind; anything but loopback requires VLM_WEB_USER / VLM_WEB_PASSWORD (login)
              --jobs         folder of job files (*.yaml); those with a `schedule` run by themselves (default: jobs)
              --model        checkpoint folder for jobs and the playground using the embedded inference server
              --inference-url  OpenAI-compatible server for the playground (default: embedded vlmserve, started on first use)""";

    private ServeCommand() {}

    public static int run(String[] args) {
        List<String> spring = new ArrayList<>(List.of("--spring.main.web-application-type=servlet"));
        try {
            for (int i = 1; i < args.length; i++) {
                String a = args[i];
                String value = null;
                if (a.contains("=")) {
                    value = a.substring(a.indexOf('=') + 1);
                    a = a.substring(0, a.indexOf('='));
                } else if (a.startsWith("--spring.") || a.startsWith("--vlm.") || a.startsWith("--server.") || a.startsWith("--management.")) {
                    throw new IllegalArgumentException(a + " needs =value");
                }
                if (a.startsWith("--spring.") || a.startsWith("--vlm.") || a.startsWith("--server.") || a.startsWith("--management.")) {
                    spring.add(a + "=" + value); // expert settings pass straight to Spring
                    continue;
                }
                if (value == null) {
                    if (i + 1 >= args.length) throw new IllegalArgumentException(a + " needs a value");
                    value = args[++i];
                }
                switch (a) {
                    case "--port" -> {
                        int port = Integer.parseInt(value);
                        if (port < 0 || port > 65535) throw new IllegalArgumentException("--port must be 0..65535");
                        spring.add("--server.port=" + port);
                    }
                    case "--host" -> spring.add("--server.address=" + value);
                    case "--jobs" -> {
                        if (!Files.isDirectory(Path.of(value))) throw new IllegalArgumentException("--jobs " + value + " is not a folder");
                        spring.add("--vlm.jobs-dir=" + value);
                    }
                    case "--model" -> spring.add("--vlm.model-dir=" + value);
                    case "--inference-url" -> {
                        if (!value.matches("https?://\\S+")) throw new IllegalArgumentException("--inference-url must be an http(s):// URL");
                        spring.add("--vlm.playground.base-url=" + value);
                    }
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            }
        } catch (NumberFormatException e) {
            System.err.println("error: --port must be a number\n" + USAGE);
            return VlmBatchApplication.EXIT_USAGE;
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage() + "\n" + USAGE);
            return VlmBatchApplication.EXIT_USAGE;
        }
        SpringApplication app = new SpringApplication(VlmBatchApplication.class, ServeConfig.class);
        app.setRegisterShutdownHook(true);
        CountDownLatch closed = new CountDownLatch(1);
        app.addListeners(e -> {
            // each run's child context closes too, and its event reaches us: only the root one ends serve
            if (e instanceof ContextClosedEvent c && c.getApplicationContext().getParent() == null) closed.countDown();
        });
        ConfigurableApplicationContext ctx;
        try {
            ctx = app.run(spring.toArray(String[]::new));
        } catch (Exception e) {
            System.err.println("error: " + Errors.rootMessage(e));
            return VlmBatchApplication.EXIT_FAILED;
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
