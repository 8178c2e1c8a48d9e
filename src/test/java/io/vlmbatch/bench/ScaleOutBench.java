package io.vlmbatch.bench;

import io.vlmbatch.VlmBatchApplication;
import io.vlmbatch.db.EmbeddedPostgresServer;
import io.vlmbatch.testsupport.RabbitBroker;
import java.awt.Color;
import java.awt.GradientPaint;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;

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
            Path photos = images(work.resolve("img-1mp"), images, 1155, 866);
            Path small = images(work.resolve("img-small"), partitionImages, 320, 240);
            Path warm = images(work.resolve("img-warm"), 48, 1155, 866);
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
                    cores, cpuModel(), Runtime.version());
            System.out.printf(Locale.ROOT, "%-10s %8s %11s %7s %9s %10s %18s %21s%n", "part", "workers", "partitions", "images",
                    "wall s", "items/s", "manager CPU ms", "manager CPU ms/part.");
            for (Row r : rows) {
                System.out.printf(Locale.ROOT, "%-10s %8d %11d %7d %9.2f %10.1f %18.0f %21.2f%n", r.part(), r.workers(), r.partitions(),
                        r.images(), r.seconds(), r.itemsPerSecond(), r.managerCpuMs(), r.managerCpuMs() / r.partitions());
            }
            write(root.resolve("bench/results/scale_out.json"), rows, cores, images, partitionImages);
        } finally {
            for (Process p : workers) stop(p);
            try (var files = Files.walk(work)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
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
        Path job = work.resolve(name + ".yaml");
        Files.writeString(job, """
                name: %s
                source: { folder: "%s" }
                tasks:
                  - { name: caption, template: describe, max_tokens: 256 }
                  - { name: text, template: ocr, max_tokens: 512 }
                  - { name: kind, template: classify, labels: [photo, document, chart, screenshot] }
                inference: { base_url: "%s", concurrency: 64 }
                run: { chunk_size: 8, partitions: %d, workers: remote, reuse: false }
                """.formatted(name, images, endpoint.baseUrl(), partitions));
        long count;
        try (var files = Files.list(images)) {
            count = files.count();
        }
        long cpu0 = processCpuNanos(), endpointCpu0 = endpoint.cpuNanos.get();
        int code = VlmBatchApplication.run(new String[] {"run", job.toString(), "--date", LocalDate.of(2026, 1, 1).plusDays(day).toString()});
        long managerCpu = processCpuNanos() - cpu0 - (endpoint.cpuNanos.get() - endpointCpu0);
        if (code != 0) throw new IllegalStateException("the " + label + " run failed with exit code " + code);
        return new Measured(name, partitions, (int) count, inferSeconds(db, name), managerCpu / 1e6);
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

    /** Wall time of the infer step as the job repository recorded it. */
    private static double inferSeconds(Connection db, String job) throws Exception {
        try (Statement s = db.createStatement(); ResultSet r = s.executeQuery("""
                SELECT extract(epoch FROM (s.end_time - s.start_time)) FROM batch_step_execution s
                JOIN batch_job_execution e ON e.job_execution_id = s.job_execution_id
                JOIN batch_job_instance i ON i.job_instance_id = e.job_instance_id
                WHERE i.job_name = '%s' AND s.step_name = 'infer'""".formatted(job))) {
            r.next();
            return r.getDouble(1);
        }
    }

    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    /** count JPEGs of the given size: 8 distinct photo-like pictures, copied. */
    private static Path images(Path dir, int count, int width, int height) throws IOException {
        Files.createDirectories(dir);
        List<byte[]> distinct = new ArrayList<>();
        Random random = new Random(width * 31L + height);
        for (int k = 0; k < 8; k++) {
            BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
            Graphics2D g = img.createGraphics();
            g.setPaint(new GradientPaint(0, 0, new Color(random.nextInt()), width, height, new Color(random.nextInt())));
            g.fillRect(0, 0, width, height);
            for (int i = 0; i < 200; i++) {
                g.setColor(new Color(random.nextInt(), true));
                g.fillOval(random.nextInt(width), random.nextInt(height), random.nextInt(width / 4 + 1), random.nextInt(height / 4 + 1));
            }
            g.dispose();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ImageIO.write(img, "jpg", out);
            distinct.add(out.toByteArray());
        }
        for (int i = 0; i < count; i++) Files.write(dir.resolve(String.format("img%05d.jpg", i)), distinct.get(i % distinct.size()));
        return dir;
    }

    private static String cpuModel() {
        try {
            return Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .findFirst().map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse("unknown CPU");
        } catch (IOException e) {
            return "unknown CPU";
        }
    }

    private static void write(Path file, List<Row> rows, int cores, int images, int partitionImages) throws IOException {
        Files.createDirectories(file.getParent());
        StringBuilder b = new StringBuilder("{\n");
        b.append("  \"benchmark\": \"scale_out\",\n");
        b.append("  \"description\": \"run.workers: remote against an instantly answering OpenAI endpoint, 3 tasks per image; workers are "
                + "separate JVMs on this machine (2 partitions at once each); items/s = images / wall time of the infer step; manager CPU = "
                + "the manager JVM's CPU over the whole run minus the endpoint's threads\",\n");
        b.append("  \"cores\": ").append(cores).append(",\n");
        b.append("  \"cpu\": \"").append(cpuModel().replace("\"", "'")).append("\",\n");
        b.append("  \"java\": \"").append(Runtime.version()).append("\",\n");
        b.append("  \"images_1mp\": ").append(images).append(",\n");
        b.append("  \"images_partition_runs\": ").append(partitionImages).append(",\n");
        b.append("  \"results\": [\n");
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            b.append(String.format(Locale.ROOT,
                    "    {\"part\": \"%s\", \"workers\": %d, \"partitions\": %d, \"images\": %d, \"infer_seconds\": %.3f, \"items_per_s\": %.2f, "
                            + "\"manager_cpu_ms\": %.0f, \"manager_cpu_ms_per_partition\": %.2f}%s%n",
                    r.part(), r.workers(), r.partitions(), r.images(), r.seconds(), r.itemsPerSecond(), r.managerCpuMs(),
                    r.managerCpuMs() / r.partitions(), i + 1 < rows.size() ? "," : ""));
        }
        b.append("  ]\n}\n");
        Files.writeString(file, b.toString());
        System.out.println("wrote " + file);
    }
}
