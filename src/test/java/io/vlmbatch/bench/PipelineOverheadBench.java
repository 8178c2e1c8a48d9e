package io.vlmbatch.bench;

import io.vlmbatch.VlmBatchApplication;
import io.vlmbatch.bench.BenchReport.Column;
import io.vlmbatch.db.EmbeddedPostgresServer;
import io.vlmbatch.image.ImagePreparer;
import io.vlmbatch.image.ResizeSpec;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

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
            Path small = BenchRuns.images(work.resolve("img-1mp"), n1, 1155, 866, true);
            Path large = BenchRuns.images(work.resolve("img-12mp"), n12, 4000, 3000, true);
            System.out.println("warm-up run (JIT), not reported...");
            run(work, endpoint, hold, postmaster, cores, "warmup", BenchRuns.images(work.resolve("img-warm"), 120, 1155, 866, true), 120, 1155, 866, 1);
            rows.add(run(work, endpoint, hold, postmaster, cores, "1 MP", small, n1, 1155, 866, 2));
            rows.add(run(work, endpoint, hold, postmaster, cores, "12 MP", large, n12, 4000, 3000, 3));

            System.out.printf(Locale.ROOT, "%nPipeline overhead, instant endpoint, 3 tasks per image, %d partitions, %d cores (%s, Java %s)%n",
                    cores, cores, BenchReport.cpuModel(), Runtime.version());
            BenchReport.printTable(List.of(new Column("size", 6, "s"), new Column("images", 7, "d"), new Column("pixels", 11, "s"),
                    new Column("wall s", 9, ".2f"), new Column("images/s", 10, ".1f"), new Column("CPU ms/image", 13, ".1f"),
                    new Column("images/s/core", 16, ".1f"), new Column("of which prepare ms", 21, ".1f")),
                    rows.stream().map(r -> new Object[] {r.size(), r.images(), r.width() + "x" + r.height(), r.seconds(), r.imagesPerSecond(),
                            r.cpuMsPerImage(), r.imagesPerSecondPerCore(), r.prepareMsPerImage()}).toList());
            write(root.resolve("bench/results/pipeline_overhead.json"), rows);
        } finally {
            BenchRuns.deleteTree(work);
        }
    }

    private static Row run(Path work, InstantOpenAiEndpoint endpoint, Connection db, long postmaster, int cores, String size,
                           Path images, int count, int width, int height, int day) throws Exception {
        String name = "bench" + day;
        Path job = BenchRuns.job(work, name, images, endpoint.baseUrl(), "chunk_size: 16, partitions: " + cores);
        long requests0 = endpoint.requests.get(), endpointCpu0 = endpoint.cpuNanos.get();
        long jvmCpu0 = BenchRuns.processCpuNanos(), pgCpu0 = postgresCpuNanos(postmaster);
        int code = VlmBatchApplication.run(new String[] {"run", job.toString(), "--date", LocalDate.of(2026, 1, day).toString()});
        long jvmCpu = BenchRuns.processCpuNanos() - jvmCpu0, pgCpu = postgresCpuNanos(postmaster) - pgCpu0;
        long endpointCpu = endpoint.cpuNanos.get() - endpointCpu0;
        if (code != 0) throw new IllegalStateException("the bench job failed with exit code " + code);
        double seconds = BenchRuns.inferSeconds(db, name);
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

    private static void write(Path file, List<Row> rows) throws IOException {
        Map<String, Object> header = BenchReport.header("pipeline_overhead", "real pipeline (embedded PostgreSQL, 3 tasks per image) "
                + "against an instantly answering OpenAI endpoint; CPU = pipeline JVM (endpoint threads excluded) + PostgreSQL");
        BenchReport.write(file, header, rows.stream().map(r -> BenchReport.row("size", r.size(), "images", r.images(), "width", r.width(),
                "height", r.height(), "infer_seconds", BenchReport.fixed(r.seconds(), 3), "images_per_s", BenchReport.fixed(r.imagesPerSecond(), 2),
                "cpu_ms_per_image", BenchReport.fixed(r.cpuMsPerImage(), 2), "images_per_s_per_core", BenchReport.fixed(r.imagesPerSecondPerCore(), 2),
                "prepare_cpu_ms_per_image", BenchReport.fixed(r.prepareMsPerImage(), 2), "requests", r.requests())).toList());
    }
}
