package io.vlmbatch.cli;

import io.vlmbatch.config.CoreConfig;
import io.vlmbatch.web.ServeConfig;

/**
 * `vlm-batch serve`: the scheduler, the REST API and the web UI in one process, until it is stopped
 * (Ctrl-C / SIGTERM). Only this command starts a web server; the others keep
 * spring.main.web-application-type=none.
 */
final class ServeCommand {
    private ServeCommand() {}

    static int run(Invocation inv) {
        return UntilStopped.run(inv, "servlet", ctx -> {
            String host = ctx.getEnvironment().getProperty("server.address", "127.0.0.1");
            String url = "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + ctx.getEnvironment().getProperty("local.server.port");
            return "vlm-batch serve: " + url + " (Ctrl-C stops it)";
        }, CoreConfig.class, ServeConfig.class);
    }
}
