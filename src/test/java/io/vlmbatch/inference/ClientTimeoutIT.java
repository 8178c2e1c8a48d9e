package io.vlmbatch.inference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vlmbatch.testsupport.VlmServeProcess;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The batch client's per-request timeout against the real vlmserve: a request that timed out is dropped by the
 * server (its client closed the connection), so the retry that follows is the only copy of that work left, not a
 * second one beside it.
 */
class ClientTimeoutIT {
    @Test
    void aRequestThatTimedOutIsDroppedByTheServer(@TempDir Path dir) throws Exception {
        try (VlmServeProcess server = VlmServeProcess.start(dir, "--max-batch", "1");
             HttpClient http = HttpClient.newHttpClient()) {
            // the server's only slot, held by a long answer (eos ignored) from another client
            CompletableFuture<HttpResponse<String>> holder = http.sendAsync(HttpRequest.newBuilder(
                            URI.create(server.baseUrl() + "/v1/chat/completions")).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("""
                            {"model": "glm-4v-9b", "messages": [{"role": "user", "content": "count"}],
                             "max_tokens": 6000, "ignore_eos": true}""")).build(), HttpResponse.BodyHandlers.ofString());
            awaitCounter(server, "vlmserve_running_sequences", 1, Duration.ofSeconds(30));

            try (OpenAiClient client = new OpenAiClient(server.baseUrl(), null, "glm-4v-9b", Duration.ofSeconds(1), 0,
                    Duration.ofMillis(10), 1)) {
                long start = System.nanoTime();
                assertThatThrownBy(() -> client.complete(new ChatRequest(null, pngDataUrl(), "Describe.", 16, null, null, null, List.of())))
                        .isInstanceOf(InferenceUnavailableException.class).hasMessageContaining("HttpTimeoutException");
                assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
            }
            awaitCounter(server, "vlmserve_requests_aborted_total", 1, Duration.ofSeconds(3));
            assertThat(server.counter("vlmserve_queue_depth")).as("nothing left waiting").isZero();
            assertThat(holder.isDone()).as("the other client's answer is still being written").isFalse();

            assertThat(holder.get().statusCode()).isEqualTo(200);
            assertThat(server.requestsFinished()).as("only the other client's request was computed").isEqualTo(1);
            assertThat(server.counter("vlmserve_requests_aborted_total")).isEqualTo(1);
        }
    }

    private static void awaitCounter(VlmServeProcess server, String name, long want, Duration within) throws Exception {
        long deadline = System.nanoTime() + within.toNanos();
        long seen = -1;
        while (System.nanoTime() < deadline) {
            seen = server.counter(name);
            if (seen == want) return;
            Thread.sleep(50);
        }
        throw new AssertionError(name + " is " + seen + ", not " + want + ", after " + within);
    }

    private static String pngDataUrl() throws Exception {
        BufferedImage image = new BufferedImage(64, 48, BufferedImage.TYPE_INT_RGB);
        ByteArrayOutputStream png = new ByteArrayOutputStream();
        ImageIO.write(image, "png", png);
        return "data:image/png;base64," + Base64.getEncoder().encodeToString(png.toByteArray());
    }
}
