package io.vlmbatch.testsupport;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real RabbitMQ broker (Debian's rabbitmq-server) as a process of the test, like the tests' PostgreSQL:
 * its node name, AMQP port, distribution port, epmd port, data, logs and config all in a temp folder, so
 * it shares nothing with a system broker or another test. Stop it with close(); restart() stops and starts
 * it on the same port and data (durable queues and persistent messages survive, as after a broker reboot).
 */
public final class RabbitBroker implements AutoCloseable {
    /** Debian installs the real start script here; /usr/sbin/rabbitmq-server would switch to the rabbitmq user. */
    static final Path SERVER = Path.of("/usr/lib/rabbitmq/bin/rabbitmq-server");

    private final Path dir;
    private final int port;
    private final int distPort;
    private final int epmdPort;
    private final String node;
    private Process process;

    private RabbitBroker(Path dir, int port, int distPort, int epmdPort) {
        this.dir = dir;
        this.port = port;
        this.distPort = distPort;
        this.epmdPort = epmdPort;
        this.node = "vlmtest" + port + "@localhost";
    }

    /** Starts a broker with its files under dir; a missing rabbitmq-server fails with how to install it. */
    public static RabbitBroker start(Path dir) throws Exception {
        if (!Files.isExecutable(SERVER)) {
            throw new AssertionError("rabbitmq-server is not installed (" + SERVER + " missing): "
                    + "apt-get install rabbitmq-server, or run ./run-tests, which installs it");
        }
        int[] ports = freePorts(3);
        RabbitBroker broker = new RabbitBroker(Files.createDirectories(dir), ports[0], ports[1], ports[2]);
        broker.writeConfig();
        broker.startProcess();
        return broker;
    }

    /** The broker's log files, for a failing test to print. */
    public String logs() throws IOException {
        StringBuilder out = new StringBuilder();
        try (var files = Files.walk(dir)) {
            for (Path f : files.filter(f -> f.toString().endsWith(".log")).sorted().toList()) {
                out.append("=== ").append(f).append('\n').append(Files.readString(f));
            }
        }
        return out.toString();
    }

    public int port() {
        return port;
    }

    /** The Spring settings a `vlm-batch worker` or run needs to reach this broker (as JVM options). */
    public String javaOpts() {
        return "-Dspring.rabbitmq.host=127.0.0.1 -Dspring.rabbitmq.port=" + port;
    }

    private void writeConfig() throws IOException {
        Files.createDirectories(dir.resolve("mnesia"));
        Files.createDirectories(dir.resolve("log"));
        Files.createDirectories(dir.resolve("home"));
        // guest may log in from loopback only, which is where the tests are; a long consumer timeout, since a
        // worker acknowledges a partition's request only when the partition is done
        Files.writeString(dir.resolve("rabbitmq.conf"), """
                listeners.tcp.default = 127.0.0.1:%d
                consumer_timeout = 3600000
                """.formatted(port));
        Files.writeString(dir.resolve("enabled_plugins"), "[].\n");
        Files.writeString(dir.resolve("rabbitmq-env.conf"), "");
    }

    private ProcessBuilder env(ProcessBuilder pb) {
        var e = pb.environment();
        e.put("HOME", dir.resolve("home").toString()); // the Erlang cookie lives here
        e.put("RABBITMQ_CONF_ENV_FILE", dir.resolve("rabbitmq-env.conf").toString());
        e.put("RABBITMQ_NODENAME", node);
        e.put("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1");
        e.put("RABBITMQ_NODE_PORT", Integer.toString(port));
        e.put("RABBITMQ_DIST_PORT", Integer.toString(distPort));
        e.put("ERL_EPMD_PORT", Integer.toString(epmdPort));
        e.put("RABBITMQ_MNESIA_BASE", dir.resolve("mnesia").toString());
        e.put("RABBITMQ_LOG_BASE", dir.resolve("log").toString());
        e.put("RABBITMQ_CONFIG_FILE", dir.resolve("rabbitmq.conf").toString());
        e.put("RABBITMQ_ENABLED_PLUGINS_FILE", dir.resolve("enabled_plugins").toString());
        e.put("RABBITMQ_PID_FILE", dir.resolve("rabbitmq.pid").toString());
        return pb.directory(dir.toFile());
    }

    private void startProcess() throws Exception {
        Path log = dir.resolve("server.log");
        process = env(new ProcessBuilder(SERVER.toString())).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) throw new IllegalStateException("rabbitmq-server exited:\n" + Files.readString(log));
            if (accepts()) return;
            Thread.sleep(250);
        }
        throw new IllegalStateException("rabbitmq-server did not listen on " + port + " in time:\n" + Files.readString(log));
    }

    private boolean accepts() {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 500);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** Stops the broker (the Erlang VM shuts down on SIGTERM) and starts it again on the same port and data. */
    public void restart() throws Exception {
        stopProcess(false);
        startProcess();
    }

    /** SIGKILL on the Erlang VM: the broker vanishes, as in a crash. */
    public void kill() throws Exception {
        stopProcess(true);
    }

    public void startAgain() throws Exception {
        startProcess();
    }

    private void stopProcess(boolean kill) throws InterruptedException {
        if (process == null) return;
        List<ProcessHandle> tree = process.descendants().toList();
        for (ProcessHandle h : tree) {
            if (h.info().command().orElse("").endsWith("beam.smp")) {
                if (kill) h.destroyForcibly(); else h.destroy();
            }
        }
        if (!process.waitFor(60, TimeUnit.SECONDS)) process.destroyForcibly().waitFor();
        for (ProcessHandle h : tree) {
            if (h.isAlive() && !h.info().command().orElse("").endsWith("epmd")) h.destroyForcibly();
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (accepts() && System.nanoTime() < deadline) Thread.sleep(100);
    }

    @Override
    public void close() throws Exception {
        stopProcess(false);
        // epmd was started as a daemon on this broker's own port: nothing else uses it
        ProcessBuilder epmd = new ProcessBuilder("epmd", "-kill").redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD);
        epmd.environment().put("ERL_EPMD_PORT", Integer.toString(epmdPort));
        try {
            epmd.start().waitFor(10, TimeUnit.SECONDS);
        } catch (IOException ignored) {
            // no epmd on PATH: nothing was left running by that name either
        }
    }

    private static int[] freePorts(int n) throws IOException {
        ServerSocket[] sockets = new ServerSocket[n];
        int[] ports = new int[n];
        try {
            for (int i = 0; i < n; i++) {
                sockets[i] = new ServerSocket(0);
                ports[i] = sockets[i].getLocalPort();
            }
        } finally {
            for (ServerSocket s : sockets) if (s != null) s.close();
        }
        return ports;
    }
}
