package io.vlmbatch.bench;

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
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import javax.imageio.ImageIO;

/** What the benches that run the real pipeline share: their input pictures, what they read back, their clean-up. */
final class BenchRuns {
    private BenchRuns() {}

    /**
     * count JPEGs of the given size: 8 distinct photo-like pictures (gradients, shapes), copied. With
     * sensorNoise the pixels also get a little noise, which gives realistic JPEG sizes.
     */
    static Path images(Path dir, int count, int width, int height, boolean sensorNoise) throws IOException {
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
            if (sensorNoise) {
                int[] px = img.getRGB(0, 0, width, height, null, 0, width);
                for (int i = 0; i < px.length; i++) px[i] ^= random.nextInt(8) * 0x010101;
                img.setRGB(0, 0, width, height, px, 0, width);
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ImageIO.write(img, "jpg", out);
            distinct.add(out.toByteArray());
        }
        for (int i = 0; i < count; i++) Files.write(dir.resolve(String.format("img%05d.jpg", i)), distinct.get(i % distinct.size()));
        return dir;
    }

    /**
     * work/name.yaml: the bench job, three tasks per image (caption, text, kind) over the pictures in
     * images, asking baseUrl 64 requests at once; run is the inside of its YAML flow mapping.
     */
    static Path job(Path work, String name, Path images, String baseUrl, String run) throws IOException {
        Path job = work.resolve(name + ".yaml");
        Files.writeString(job, """
                name: %s
                source: { folder: "%s" }
                tasks:
                  - { name: caption, template: describe, max_tokens: 256 }
                  - { name: text, template: ocr, max_tokens: 512 }
                  - { name: kind, template: classify, labels: [photo, document, chart, screenshot] }
                inference: { base_url: "%s", concurrency: 64 }
                run: { %s }
                """.formatted(name, images, baseUrl, run));
        return job;
    }

    /** Wall time of the infer step as the job repository recorded it. */
    static double inferSeconds(Connection db, String job) throws Exception {
        try (PreparedStatement s = db.prepareStatement("""
                SELECT extract(epoch FROM (s.end_time - s.start_time)) FROM batch_step_execution s
                JOIN batch_job_execution e ON e.job_execution_id = s.job_execution_id
                JOIN batch_job_instance i ON i.job_instance_id = e.job_instance_id
                WHERE i.job_name = ? AND s.step_name = 'infer'""")) {
            s.setString(1, job);
            try (ResultSet r = s.executeQuery()) {
                r.next();
                return r.getDouble(1);
            }
        }
    }

    static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    /** Removes a bench's scratch folder and everything in it. */
    static void deleteTree(Path dir) throws IOException {
        try (var files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
