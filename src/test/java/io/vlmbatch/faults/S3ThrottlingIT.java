package io.vlmbatch.faults;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.source.S3Clients;
import io.vlmbatch.source.S3Settings;
import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.Launcher;
import io.vlmbatch.testsupport.RunDatabase;
import io.vlmbatch.testsupport.S3MockServer;
import io.vlmbatch.testsupport.VlmServeProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * The S3 source's server (the real S3-compatible test server, behind an injecting proxy) answers every
 * request with 503 SlowDown or 500 InternalError for a while: once as the run starts (the listing), once
 * in the middle (the image fetches). The run completes with every item done; the figures say how many
 * errors were injected and how many requests the SDK retried. CI: 40 images, 2 s windows; full:
 * -Dfaults.images=150 -Dfaults.s3.window=8.
 */
class S3ThrottlingIT {

    @Test
    void aRunOverS3CompletesWithEveryItemThroughThrottlingAndServerErrors(@TempDir Path work) throws Exception {
        int images = FaultReport.setting("images", 40);
        int window = FaultReport.setting("s3.window", 2);
        AtomicBoolean failing = new AtomicBoolean(true);
        try (S3MockServer s3 = S3MockServer.start();
             FaultyHttpProxy proxy = new FaultyHttpProxy(s3.endpoint(), failing::get);
             VlmServeProcess server = VlmServeProcess.start(work)) {
            S3MockServer.useDummyCredentials();
            failing.set(false);
            try (S3Client client = S3Clients.create(new S3Settings(s3.endpoint(), null, true))) {
                client.createBucket(b -> b.bucket("faults"));
                for (int i = 0; i < images; i++) {
                    String key = "in/img%04d.jpg".formatted(i);
                    client.putObject(b -> b.bucket("faults").key(key), RequestBody.fromBytes(ImageFiles.jpeg(320, 240, i)));
                }
            }
            Path job = FaultJob.write(work, "s3faults", "{ s3: \"s3://faults/in/\", endpoint: \"%s\", path_style: true }".formatted(proxy.endpoint()),
                    "base_url: \"%s\", concurrency: 8, retries: 3, backoff_ms: 200, timeout_s: 10".formatted(server.baseUrl()), 4, 2);
            Launcher launcher = new Launcher(work.resolve("data"), work);
            Path log = work.resolve("run.log");
            long total = (long) images * FaultJob.TASKS.size();
            try (RunDatabase db = new RunDatabase(work.resolve("data"))) {
                ProcessBuilder pb = launcher.builder("run", job.toString(), "--date", "2026-08-01").redirectOutput(log.toFile());
                pb.environment().put("AWS_ACCESS_KEY_ID", "test-access-key");
                pb.environment().put("AWS_SECRET_ACCESS_KEY", "test-secret-key");
                pb.environment().put("AWS_REGION", "us-east-1");
                long requestsBefore = proxy.requests.get();
                failing.set(true); // the listing at the start
                Process run = pb.start();
                try {
                    Waiting.until(() -> proxy.requests.get() > requestsBefore || !run.isAlive(), Duration.ofMinutes(3));
                    Thread.sleep(window * 1000L);
                    failing.set(false);
                    Waiting.until(() -> !run.isAlive() || FaultJob.doneCount(db, "s3faults") >= total / 3, Duration.ofMinutes(5));
                    failing.set(true); // the fetches in the middle
                    Thread.sleep(window * 1000L);
                    failing.set(false);
                    assertThat(run.waitFor(10, TimeUnit.MINUTES)).isTrue();
                } finally {
                    failing.set(false);
                    if (run.isAlive()) run.destroyForcibly().waitFor();
                }
                String output = Files.readString(log);
                long runId = db.runId("s3faults");
                long done = db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'done'", runId);
                long failed = db.count("SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status = 'failed'", runId);
                List<String> reasons = db.jdbc.queryForList(
                        "SELECT DISTINCT left(error, 160) FROM vlm_work_item WHERE run_id = ? AND status = 'failed'", String.class, runId);
                new FaultReport("s3", "the S3 test server answering 503 SlowDown and 500 InternalError (in turn) for a while, twice")
                        .put("command", "mvn -B -ntp -o verify -Dtest=NONE -Dsurefire.failIfNoSpecifiedTests=false -Dit.test=S3ThrottlingIT"
                                + " -Dfaults.images=" + images + " -Dfaults.s3.window=" + window)
                        .put("failed_reasons", reasons)
                        .write(List.of("images", "error windows", "requests to S3", "503 SlowDown", "500 InternalError",
                                        "SDK retries", "max attempt", "run exit", "done", "failed"),
                                List.of(List.of(images, "2 x " + window + " s", proxy.requests.get(), proxy.slowDowns.get(),
                                        proxy.internalErrors.get(), proxy.retried.get(), proxy.maxAttempt.get(), run.exitValue(), done, failed)));
                assertThat(proxy.slowDowns.get() + proxy.internalErrors.get()).as("errors were injected").isPositive();
                assertThat(run.exitValue()).as(output).isZero();
                assertThat(done).as("every item done\n" + reasons).isEqualTo(images);
                assertThat(FaultJob.csvRows(work.resolve("out/s3faults.csv"))).isEqualTo(images);
            }
        }
    }
}
