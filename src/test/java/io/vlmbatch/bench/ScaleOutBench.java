package io.vlmbatch.bench;

import io.vlmbatch.VlmBatchApplication;
import io.vlmbatch.bench.BenchReport.Column;
import io.vlmbatch.db.EmbeddedPostgresServer;
import io.vlmbatch.testsupport.RabbitBroker;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.time.Duration;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Scale-out: the real pipeline with run.workers: remote, against an instantly answering OpenAI endpoint,
 * so what is measured is the pipeline's own ceiling (decode, resize, re-encode, requests, PostgreSQL).
 * Part 1: items/s of the infer step with 1, 2 and 4 `vlm-batch worker` processes (separate JVMs, two
 * partitions at once each) on this machine. Part 2: the manager's overhead as the partitions of one run
 * grow (8 / 64 / 256 over the same images, 2 workers): the infer step's wall time and the manager JVM's
 * CPU (endpoint threads excluded) per partition. A real RabbitMQ and the embedded PostgreSQL; the manager
 * runs in this JVM. Prints a table and writes bench/results/scale_out.json.
 *
 * Run: bench/scale_out [--images N] [--partition-images N]
 */
public final class ScaleOutBench {
    record Row(String part, int workers, int partitions, int images, double seconds, double itemsPerSecond, double managerCpuMs) {}

    public static void main(String[] args) throws Exception {
        int images = 240, partitionImages = 256;
        for (int i = 0; i < args.length - 1; i++) {
            if (args[i].equals("--images")) images = Integer.parseInt(args[++i]);
            else if (args[i].equals("--partition-images")) partitionImages = Integer.parseInt(args[++i]);
        }
        Path work = Files.createTempDirectory("vlm-scale");
        Path data = work.resolve("data");
        System.setProperty("vlm.data.dir", data.toString());
        Path root = Path.of("").toAbsolutePath();
        int cores = Runtime.getRuntime().availableProcessors();
        List<Process> workers = new ArrayList<>();
        try (RabbitBroker broker = RabbitBroker.start(work.resolve("rabbit"));
             InstantOpenAiEndpoint endpoint = new InstantOpenAiEndpoint();
             EmbeddedPostgresServer pg = EmbeddedPostgresServer.startOrJoin(data.resolve("pg"));
             Connection db = DriverManager.getConnection(pg.jdbcUrl(), pg.user(), pg.password())) {
            System.setProperty("spring.rabbitmq.host", "127.0.0.1");
            System.setProperty("spring.rabbitmq.port", Integer.toString(broker.port()));
            Path photos = BenchRuns.images(work.resolve("img-1mp"), images, 1155, 866, false);
            Path small = BenchRuns.images(work.resolve("img-small"), partitionImages, 320, 240, false);
            Path warm = BenchRuns.images(work.resolve("img-warm"), 48, 1155, 866, false);
            List<Row> rows = new ArrayList<>();
            int day = 0;
            for (int n : new int[] {1, 2, 4}) {
                while (workers.size() < n) workers.add(startWorker(work, data, broker, workers.size()));
                // the new workers' JIT warms up on a run that is not reported
                run(work, endpoint, db, "warm" + n, warm, 8, ++day);
                rows.add(run(work, endpoint, db, "workers", photos, 4 * n * 4, ++day).with("workers", n));
                System.out.println(rows.getLast());
            }
            while (workers.size() > 2) stop(workers.removeLast());
            for (int partitions : new int[] {8, 64, 256}) {
                rows.add(run(work, endpoint, db, "partitions", small, partitions, ++day).with("partitions", 2));
                System.out.println(rows.getLast());
            }

            System.out.printf(Locale.ROOT, "%nScale-out, instant endpoint, 3 tasks per image, workers on this machine (%d cores, %s, Java %s)%n",
                    cores, BenchReport.cpuModel(), Runtime.version());
            BenchReport.printTable(List.of(new Column("part", 10, "s"), new Column("workers", 8, "d"), new Column("partitions", 11, "d"),
                    new Column("images", 7, "d"), new Column("wall s", 9, ".2f"), new Column("items/s", 10, ".1f"),
                    new Column("manager CPU ms", 18, ".0f"), new Column("manager CPU ms/part.", 21, ".2f")),
                    rows.stream().map(r -> new Object[] {r.part(), r.workers(), r.partitions(), r.images(), r.seconds(), r.itemsPerSecond(),
                            r.managerCpuMs(), r.managerCpuMs() / r.partitions()}).toList());
            write(root.resolve("bench/results/scale_out.json"), rows, images, partitionImages);
        } finally {
            for (Process p : workers) stop(p);
            BenchRuns.deleteTree(work);
        }
    }

    private record Measured(String job, int partitions, int images, double seconds, double managerCpuMs) {
        Row with(String part, int workers) {
            return new Row(part, workers, partitions, images, seconds, images / seconds, managerCpuMs);
        }
    }

    private static Measured run(Path work, InstantOpenAiEndpoint endpoint, Connection db, String label, Path images, int partitions,
                                int day) throws Exception {
        String name = "scale" + day;
        Path job = BenchRuns.job(work, name, images, endpoint.baseUrl(), "chunk_size: 8, partitions: " + partitions + ", workers: remote, reuse: false");
        long count;
        try (var files = Files.list(images)) {
            count = files.count();
        }
        long cpu0 = BenchRuns.processCpuNanos(), endpointCpu0 = endpoint.cpuNanos.get();
        int code = VlmBatchApplication.run(new String[] {"run", job.toString(), "--date", LocalDate.of(2026, 1, 1).plusDays(day).toString()});
        long managerCpu = BenchRuns.processCpuNanos() - cpu0 - (endpoint.cpuNanos.get() - endpointCpu0);
        if (code != 0) throw new IllegalStateException("the " + label + " run failed with exit code " + code);
        return new Measured(name, partitions, (int) count, BenchRuns.inferSeconds(db, name), managerCpu / 1e6);
    }

    private static Process startWorker(Path work, Path data, RabbitBroker broker, int index) throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        Path log = work.resolve("worker-" + index + ".log");
        ProcessBuilder pb = new ProcessBuilder(java, "-XX:+UseParallelGC", "-Xmx1g", "-Dvlm.data.dir=" + data,
                "-Dspring.rabbitmq.host=127.0.0.1", "-Dspring.rabbitmq.port=" + broker.port(),
                "-cp", System.getProperty("java.class.path"), VlmBatchApplication.class.getName(), "worker", "--concurrency", "2")
                .redirectErrorStream(true).redirectOutput(log.toFile());
        Process p = pb.start();
        long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        while (System.nanoTime() < deadline) {
            if (!p.isAlive()) throw new IllegalStateException("worker exited: " + Files.readString(log));
            if (Files.readString(log).contains("taking partitions from queue")) return p;
            Thread.sleep(200);
        }
        throw new IllegalStateException("worker not ready in time: " + Files.readString(log));
    }

    private static void stop(Process p) {
        p.destroy();
        try {
            if (!p.waitFor(30, TimeUnit.SECONDS)) p.destroyForcibly().waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void write(Path file, List<Row> rows, int images, int partitionImages) throws IOException {
        Map<String, Object> header = BenchReport.header("scale_out", "run.workers: remote against an instantly answering OpenAI endpoint, "
                + "3 tasks per image; workers are separate JVMs on this machine (2 partitions at once each); items/s = images / wall time of "
                + "the infer step; manager CPU = the manager JVM's CPU over the whole run minus the endpoint's threads");
        header.put("images_1mp", images);
        header.put("images_partition_runs", partitionImages);
        BenchReport.write(file, header, rows.stream().map(r -> BenchReport.row("part", r.part(), "workers", r.workers(),
                "partitions", r.partitions(), "images", r.images(), "infer_seconds", BenchReport.fixed(r.seconds(), 3),
                "items_per_s", BenchReport.fixed(r.itemsPerSecond(), 2), "manager_cpu_ms", BenchReport.fixed(r.managerCpuMs(), 0),
                "manager_cpu_ms_per_partition", BenchReport.fixed(r.managerCpuMs() / r.partitions(), 2))).toList());
    }
}
