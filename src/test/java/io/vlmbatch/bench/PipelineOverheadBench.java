package io.vlmbatch.bench;

import io.vlmbatch.VlmBatchApplication;
import io.vlmbatch.db.EmbeddedPostgresServer;
import io.vlmbatch.image.ImagePreparer;
import io.vlmbatch.image.ResizeSpec;
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
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import javax.imageio.ImageIO;

/**
 * Pipeline overhead: the real job (discover → infer → export, embedded PostgreSQL, 3 tasks per image)
 * against an endpoint that answers instantly, on 1 MP and 12 MP JPEGs. Reports images/s (wall time of
 * the infer step) and CPU per image (this JVM minus the endpoint's own threads, plus PostgreSQL's
 * processes), and from that images/s per core. Prints a table and writes bench/results/pipeline_overhead.json.
 *
 * Run: bench/pipeline_overhead [--images-1mp N] [--images-12mp N]
 */
public final class PipelineOverheadBench {
    private static final long TICKS = 100; // USER_HZ of /proc/<pid>/stat

    record Row(String size, int images, int width, int height, double seconds, double imagesPerSecond,
               double cpuMsPerImage, double imagesPerSecondPerCore, double prepareMsPerImage, long requests) {}

    public static void main(String[] args) throws Exception {
        int n1 = 600, n12 = 60;
        for (int i = 0; i < args.length - 1; i++) {
            if (args[i].equals("--images-1mp")) n1 = Integer.parseInt(args[++i]);
            else if (args[i].equals("--images-12mp")) n12 = Integer.parseInt(args[++i]);
        }
        Path work = Files.createTempDirectory("vlm-bench");
        System.setProperty("vlm.data.dir", work.resolve("data").toString());
        Path root = Path.of("").toAbsolutePath();
        int cores = Runtime.getRuntime().availableProcessors();

        try (InstantOpenAiEndpoint endpoint = new InstantOpenAiEndpoint();
             EmbeddedPostgresServer pg = EmbeddedPostgresServer.startOrJoin(work.resolve("data/pg"));
             Connection hold = DriverManager.getConnection(pg.jdbcUrl(), pg.user(), pg.password())) {
            // `hold` keeps the database up between runs, so each run joins it and PostgreSQL's CPU is countable.
            long postmaster = Long.parseLong(Files.readAllLines(work.resolve("data/pg/postmaster.pid")).getFirst().trim());
            List<Row> rows = new ArrayList<>();
            Path small = images(work.resolve("img-1mp"), n1, 1155, 866);
            Path large = images(work.resolve("img-12mp"), n12, 4000, 3000);
            System.out.println("warm-up run (JIT), not reported...");
            run(work, endpoint, hold, postmaster, cores, "warmup", images(work.resolve("img-warm"), 120, 1155, 866), 120, 1155, 866, 1);
            rows.add(run(work, endpoint, hold, postmaster, cores, "1 MP", small, n1, 1155, 866, 2));
            rows.add(run(work, endpoint, hold, postmaster, cores, "12 MP", large, n12, 4000, 3000, 3));

            System.out.printf(Locale.ROOT, "%nPipeline overhead, instant endpoint, 3 tasks per image, %d partitions, %d cores (%s, Java %s)%n",
                    cores, cores, cpuModel(), Runtime.version());
            System.out.printf(Locale.ROOT, "%-6s %7s %11s %9s %10s %13s %16s %21s%n", "size", "images", "pixels", "wall s",
                    "images/s", "CPU ms/image", "images/s/core", "of which prepare ms");
            for (Row r : rows) {
                System.out.printf(Locale.ROOT, "%-6s %7d %11s %9.2f %10.1f %13.1f %16.1f %21.1f%n", r.size(), r.images(),
                        r.width() + "x" + r.height(), r.seconds(), r.imagesPerSecond(), r.cpuMsPerImage(), r.imagesPerSecondPerCore(),
                        r.prepareMsPerImage());
            }
            write(root.resolve("bench/results/pipeline_overhead.json"), rows, cores);
        } finally {
            try (var files = Files.walk(work)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    private static Row run(Path work, InstantOpenAiEndpoint endpoint, Connection db, long postmaster, int cores, String size,
                           Path images, int count, int width, int height, int day) throws Exception {
        String name = "bench" + day;
        Path job = work.resolve(name + ".yaml");
        Files.writeString(job, """
                name: %s
                source: { folder: "%s" }
                tasks:
                  - { name: caption, template: describe, max_tokens: 256 }
                  - { name: text, template: ocr, max_tokens: 512 }
                  - { name: kind, template: classify, labels: [photo, document, chart, screenshot] }
                inference: { base_url: "%s", concurrency: 64 }
                run: { chunk_size: 16, partitions: %d }
                """.formatted(name, images, endpoint.baseUrl(), cores));
        long requests0 = endpoint.requests.get(), endpointCpu0 = endpoint.cpuNanos.get();
        long jvmCpu0 = processCpuNanos(), pgCpu0 = postgresCpuNanos(postmaster);
        int code = VlmBatchApplication.run(new String[] {"run", job.toString(), "--date", LocalDate.of(2026, 1, day).toString()});
        long jvmCpu = processCpuNanos() - jvmCpu0, pgCpu = postgresCpuNanos(postmaster) - pgCpu0;
        long endpointCpu = endpoint.cpuNanos.get() - endpointCpu0;
        if (code != 0) throw new IllegalStateException("the bench job failed with exit code " + code);
        double seconds = inferSeconds(db, name);
        double cpuPerImage = (jvmCpu - endpointCpu + pgCpu) / 1e6 / count;
        return new Row(size, count, width, height, seconds, count / seconds, cpuPerImage, 1000.0 / cpuPerImage,
                prepareMs(images.resolve("img00000.jpg")), endpoint.requests.get() - requests0);
    }

    /** CPU of image preparation alone (decode, orient, resize, re-encode), one thread, after warm-up. */
    private static double prepareMs(Path image) throws Exception {
        byte[] bytes = Files.readAllBytes(image);
        ImagePreparer preparer = new ImagePreparer(new ResizeSpec(1120, 100_000_000L, "jpeg", 0.9f));
        for (int i = 0; i < 5; i++) preparer.prepare(bytes, "warm.jpg");
        var mx = ManagementFactory.getThreadMXBean();
        long start = mx.getCurrentThreadCpuTime();
        int n = 10;
        for (int i = 0; i < n; i++) preparer.prepare(bytes, "x.jpg");
        return (mx.getCurrentThreadCpuTime() - start) / 1e6 / n;
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

    /** CPU of the postmaster, its live backends, and (cutime/cstime) the backends that have exited. */
    private static long postgresCpuNanos(long postmaster) throws IOException {
        long ticks = 0;
        try (var procs = Files.list(Path.of("/proc"))) {
            for (Path p : (Iterable<Path>) procs::iterator) {
                String pid = p.getFileName().toString();
                if (!pid.chars().allMatch(Character::isDigit)) continue;
                String[] f;
                try {
                    String stat = Files.readString(p.resolve("stat"));
                    f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                } catch (IOException gone) {
                    continue;
                }
                long self = Long.parseLong(pid);
                long ppid = Long.parseLong(f[1]);
                if (self == postmaster) ticks += Long.parseLong(f[11]) + Long.parseLong(f[12]) + Long.parseLong(f[13]) + Long.parseLong(f[14]);
                else if (ppid == postmaster) ticks += Long.parseLong(f[11]) + Long.parseLong(f[12]);
            }
        }
        return ticks * 1_000_000_000L / TICKS;
    }

    /** count JPEGs of the given size: 8 distinct photos-like pictures (gradients, shapes, noise), copied. */
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
            int[] px = img.getRGB(0, 0, width, height, null, 0, width);
            for (int i = 0; i < px.length; i++) px[i] ^= random.nextInt(8) * 0x010101; // sensor-like noise: realistic JPEG sizes
            img.setRGB(0, 0, width, height, px, 0, width);
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

    private static void write(Path file, List<Row> rows, int cores) throws IOException {
        Files.createDirectories(file.getParent());
        StringBuilder b = new StringBuilder("{\n");
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("benchmark", "\"pipeline_overhead\"");
        meta.put("description", "\"real pipeline (embedded PostgreSQL, 3 tasks per image) against an instantly answering OpenAI endpoint; CPU = pipeline JVM (endpoint threads excluded) + PostgreSQL\"");
        meta.put("cores", Integer.toString(cores));
        meta.put("cpu", "\"" + cpuModel().replace("\"", "'") + "\"");
        meta.put("java", "\"" + Runtime.version() + "\"");
        meta.forEach((k, v) -> b.append("  \"").append(k).append("\": ").append(v).append(",\n"));
        b.append("  \"results\": [\n");
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            b.append(String.format(Locale.ROOT,
                    "    {\"size\": \"%s\", \"images\": %d, \"width\": %d, \"height\": %d, \"infer_seconds\": %.3f, \"images_per_s\": %.2f, "
                            + "\"cpu_ms_per_image\": %.2f, \"images_per_s_per_core\": %.2f, \"prepare_cpu_ms_per_image\": %.2f, \"requests\": %d}%s%n",
                    r.size(), r.images(), r.width(), r.height(), r.seconds(), r.imagesPerSecond(), r.cpuMsPerImage(),
                    r.imagesPerSecondPerCore(), r.prepareMsPerImage(), r.requests(), i + 1 < rows.size() ? "," : ""));
        }
        b.append("  ]\n}\n");
        Files.writeString(file, b.toString());
        System.out.println("wrote " + file);
    }
}
