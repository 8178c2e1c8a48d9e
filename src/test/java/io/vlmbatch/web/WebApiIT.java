package io.vlmbatch.web;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.RepoPaths;
import java.io.ByteArrayInputStream;
import java.net.CookieManager;
import java.net.HttpCookie;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * The REST API over real HTTP: the scheduler's catchup runs of a real job (real PostgreSQL, real
 * vlmserve on the tiny model), run detail, filtered results, thumbnails, actions, the streaming
 * playground, health and Prometheus metrics.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class WebApiIT {
    Path tmp;
    ServeFixture serve;
    final CookieManager cookies = new CookieManager();
    HttpClient http;

    @BeforeAll
    void start(@TempDir Path tmp) throws Exception {
        this.tmp = tmp;
        serve = new ServeFixture(tmp);
        http = HttpClient.newBuilder().cookieHandler(cookies).build();
        serve.awaitCatchup(Duration.ofMinutes(4));
    }

    @AfterAll
    void stop() throws Exception {
        http.close();
        serve.close();
    }

    HttpResponse<String> send(String method, String path, HttpRequest.BodyPublisher body, String contentType, boolean csrf)
            throws Exception {
        send0("GET", "api/jobs", HttpRequest.BodyPublishers.noBody(), null, null); // gets the XSRF-TOKEN cookie
        String token = cookies.getCookieStore().getCookies().stream().filter(c -> c.getName().equals("XSRF-TOKEN"))
                .map(HttpCookie::getValue).findFirst().orElse(null);
        return send0(method, path, body, contentType, csrf ? token : null);
    }

    HttpResponse<String> send0(String method, String path, HttpRequest.BodyPublisher body, String contentType, String token)
            throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(serve.base + path)).method(method, body);
        if (contentType != null) b.header("Content-Type", contentType);
        if (token != null) b.header("X-XSRF-TOKEN", token);
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    long firstRunId() throws Exception {
        for (JsonNode r : serve.get("api/jobs/gallery/runs")) {
            if (r.path("state").asString().equals("success")) return r.path("runId").asLong();
        }
        throw new AssertionError("no successful run");
    }

    @Test
    void jobsShowScheduleNextRunAndBrokenFiles() throws Exception {
        JsonNode jobs = serve.get("api/jobs");
        JsonNode gallery = null, broken = null;
        for (JsonNode j : jobs) {
            if (j.path("name").asString().equals("gallery")) gallery = j;
            if (j.path("name").asString().equals("broken")) broken = j;
        }
        assertThat(gallery).isNotNull();
        assertThat(gallery.path("schedule").asString()).isEqualTo("0 0 * * *");
        assertThat(gallery.path("nextRunAt").asString()).endsWith("T00:00:00Z");
        assertThat(gallery.path("tasks").toString()).isEqualTo("[\"caption\",\"kind\"]");
        assertThat(broken.path("error").asString()).contains("broken.yaml:3").contains("tasks");
    }

    @Test
    void catchupRanOneRunPerMissedDayWithTheirLogicalDates() throws Exception {
        JsonNode runs = serve.get("api/jobs/gallery/runs");
        List<String> dates = new ArrayList<>();
        for (JsonNode r : runs) {
            if (r.path("trigger").asString().equals("schedule")) dates.add(r.path("logicalDate").asString());
        }
        assertThat(dates).containsExactly(serve.start.plusDays(2).toString(), serve.start.plusDays(1).toString(), serve.start.toString());
        // {{ ds_nodash }} in the output path: one CSV per logical date
        assertThat(serve.dir.resolve("jobs/out/gallery-" + serve.start.toString().replace("-", "") + ".csv")).exists();
    }

    @Test
    void runDetailHasStepsCountsThroughputAndFailureReasons() throws Exception {
        JsonNode run = serve.get("api/runs/" + firstRunId());
        assertThat(run.path("state").asString()).isEqualTo("success");
        assertThat(run.path("counts").path("done").asLong()).isEqualTo(serve.images);
        assertThat(run.path("counts").path("failed").asLong()).isEqualTo(1);
        assertThat(run.path("imagesPerSecond").asDouble()).isPositive();
        List<String> steps = new ArrayList<>();
        run.path("steps").forEach(s -> {
            steps.add(s.path("name").asString());
            assertThat(s.path("status").asString()).isEqualTo("COMPLETED");
        });
        assertThat(steps).contains("discover", "infer", "export");
        JsonNode failure = run.path("failures").get(0);
        assertThat(failure.path("itemKey").asString()).isEqualTo("not-an-image.jpg");
        assertThat(failure.path("error").asString()).containsIgnoringCase("not an image");
    }

    @Test
    void resultsPageFilterAndSearch() throws Exception {
        long id = firstRunId();
        JsonNode all = serve.get("api/runs/" + id + "/results?size=2");
        assertThat(all.path("total").asLong()).isEqualTo(serve.images + 1);
        assertThat(all.path("items").size()).isEqualTo(2);
        JsonNode page2 = serve.get("api/runs/" + id + "/results?size=2&page=1");
        assertThat(page2.path("items").get(0).path("id").asLong()).isGreaterThan(all.path("items").get(1).path("id").asLong());

        JsonNode failed = serve.get("api/runs/" + id + "/results?status=failed");
        assertThat(failed.path("total").asLong()).isEqualTo(1);
        assertThat(failed.path("items").get(0).path("itemKey").asString()).isEqualTo("not-an-image.jpg");

        JsonNode first = serve.get("api/runs/" + id + "/results?status=done&size=1").path("items").get(0);
        assertThat(first.path("answers").has("caption")).isTrue();
        String label = first.path("answers").path("kind").path("answer").asString();
        assertThat(label).isIn("photo", "document", "chart", "screenshot");
        JsonNode byLabel = serve.get("api/runs/" + id + "/results?task=kind&label=" + label + "&size=200");
        assertThat(byLabel.path("total").asLong()).isPositive();
        byLabel.path("items").forEach(it -> assertThat(it.path("answers").path("kind").path("answer").asString()).isEqualTo(label));

        JsonNode search = serve.get("api/runs/" + id + "/results?q=COFFEE");
        assertThat(search.path("total").asLong()).isEqualTo(1);
        assertThat(search.path("items").get(0).path("itemKey").asString()).isEqualTo("coffee.jpg");

        assertThat(send("GET", "api/runs/" + id + "/results?status=weird", HttpRequest.BodyPublishers.noBody(), null, false).statusCode())
                .isEqualTo(400);
        assertThat(send("GET", "api/runs/999999/results", HttpRequest.BodyPublishers.noBody(), null, false).statusCode()).isEqualTo(404);
    }

    @Test
    void thumbnailsAreSmallJpegsOfTheSourceImage() throws Exception {
        long id = firstRunId();
        long item = serve.get("api/runs/" + id + "/results?q=bar-chart").path("items").get(0).path("id").asLong();
        HttpResponse<byte[]> r = http.send(HttpRequest.newBuilder(URI.create(serve.base + "api/runs/" + id + "/items/" + item + "/thumbnail")).build(),
                HttpResponse.BodyHandlers.ofByteArray());
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.headers().firstValue("Content-Type")).contains("image/jpeg");
        var img = ImageIO.read(new ByteArrayInputStream(r.body()));
        assertThat(Math.max(img.getWidth(), img.getHeight())).isEqualTo(320);
        long bad = serve.get("api/runs/" + id + "/results?status=failed").path("items").get(0).path("id").asLong();
        assertThat(send("GET", "api/runs/" + id + "/items/" + bad + "/thumbnail", HttpRequest.BodyPublishers.noBody(), null, false)
                .statusCode()).isEqualTo(422);
    }

    @Test
    void triggerNeedsCsrfAndRunsTheDate() throws Exception {
        String date = serve.start.minusDays(10).toString();
        assertThat(send("POST", "api/jobs/gallery/trigger?date=" + date, HttpRequest.BodyPublishers.noBody(), null, false).statusCode())
                .as("without the CSRF header").isEqualTo(403);
        HttpResponse<String> ok = send("POST", "api/jobs/gallery/trigger?date=" + date, HttpRequest.BodyPublishers.noBody(), null, true);
        assertThat(ok.statusCode()).as(ok.body()).isEqualTo(200);
        assertThat(ok.body()).contains("\"manual\"");
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        String state = "";
        while (System.nanoTime() < deadline && !state.equals("success")) {
            for (JsonNode r : serve.get("api/jobs/gallery/runs")) {
                if (r.path("logicalDate").asString().equals(date)) state = r.path("state").asString();
            }
            Thread.sleep(300);
        }
        assertThat(state).isEqualTo("success");
        HttpResponse<String> again = send("POST", "api/jobs/gallery/runs/" + date + "/restart", HttpRequest.BodyPublishers.noBody(), null, true);
        assertThat(again.statusCode()).isEqualTo(409);
        assertThat(again.body()).contains("only failed or stopped runs restart");
        assertThat(send("POST", "api/jobs/gallery/trigger?date=yesterday", HttpRequest.BodyPublishers.noBody(), null, true).statusCode())
                .isEqualTo(400);
        assertThat(send("POST", "api/jobs/broken/trigger", HttpRequest.BodyPublishers.noBody(), null, true).statusCode()).isEqualTo(409);
        assertThat(send("POST", "api/jobs/nope/trigger", HttpRequest.BodyPublishers.noBody(), null, true).statusCode()).isEqualTo(404);
    }

    HttpResponse<String> post(String path) throws Exception {
        return send("POST", path, HttpRequest.BodyPublishers.noBody(), null, true);
    }

    /** The state word of the gallery run of a date ("" when there is none yet). */
    String stateOf(String date) throws Exception {
        for (JsonNode r : serve.get("api/jobs/gallery/runs")) {
            if (r.path("logicalDate").asString().equals(date)) return r.path("state").asString();
        }
        return "";
    }

    void awaitState(String date, String state) throws Exception {
        long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        while (System.nanoTime() < deadline && !stateOf(date).equals(state)) Thread.sleep(300);
        assertThat(stateOf(date)).as(date).isEqualTo(state);
    }

    @Test
    void planSaysWhatARunWouldAskAndReuse() throws Exception {
        JsonNode plan = serve.get("api/jobs/gallery/plan?date=" + serve.start.plusDays(30));
        assertThat(plan.path("items").asLong()).isEqualTo(serve.images + 1);
        assertThat(plan.path("reusedItems").asLong() + plan.path("newItems").asLong() + plan.path("unreadableItems").asLong())
                .isEqualTo(plan.path("items").asLong());
        assertThat(plan.path("reusedItems").asLong()).as("the catchup runs answered these bytes: " + plan).isPositive();
        assertThat(plan.path("estimatedSeconds").isNumber()).as("the catchup runs measured a rate: " + plan).isTrue();
        assertThat(plan.path("endpoint").asString()).isEqualTo(serve.vlm.baseUrl());
        assertThat(plan.path("computedMillis").asLong()).as("how long the listing took: " + plan).isPositive();
        assertThat(plan.path("keptSeconds").asLong()).isEqualTo(60);
        java.time.Instant computedAt = java.time.Instant.parse(plan.path("computedAt").asString());
        assertThat(computedAt).isBetween(java.time.Instant.now().minusSeconds(120), java.time.Instant.now());

        // asked again within the time a plan is kept: the same plan, older, not listed again
        Thread.sleep(50);
        JsonNode again = serve.get("api/jobs/gallery/plan?date=" + serve.start.plusDays(30));
        assertThat(again.path("computedAt").asString()).isEqualTo(plan.path("computedAt").asString());
        assertThat(again.path("computedMillis").asLong()).isEqualTo(plan.path("computedMillis").asLong());
        assertThat(again.path("ageMillis").asLong()).isGreaterThanOrEqualTo(50);
        assertThat(again.path("items").asLong()).isEqualTo(plan.path("items").asLong());

        // several tabs at once, two dates: every answer is a plan or the 409 saying which date is being computed;
        // the requests for one date that got a plan got the same one
        List<String> dates = List.of(serve.start.plusDays(31).toString(), serve.start.plusDays(32).toString());
        List<java.util.concurrent.CompletableFuture<HttpResponse<String>>> sent = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            sent.add(http.sendAsync(HttpRequest.newBuilder(URI.create(serve.base + "api/jobs/gallery/plan?date=" + dates.get(i % 2))).build(),
                    HttpResponse.BodyHandlers.ofString()));
        }
        java.util.Map<String, java.util.Set<String>> computedAtByDate = new java.util.HashMap<>();
        for (int i = 0; i < sent.size(); i++) {
            HttpResponse<String> r = sent.get(i).get(2, java.util.concurrent.TimeUnit.MINUTES);
            if (r.statusCode() == 409) {
                assertThat(ServeFixture.JSON.readTree(r.body()).path("detail").asString())
                        .matches("the plan of gallery for " + dates.get((i + 1) % 2) + " is being computed \\(started [0-9]+ s ago\\); "
                                + "ask for " + dates.get(i % 2) + " once it is done");
                continue;
            }
            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            JsonNode p = ServeFixture.JSON.readTree(r.body());
            assertThat(p.path("date").asString()).isEqualTo(dates.get(i % 2));
            computedAtByDate.computeIfAbsent(dates.get(i % 2), d -> new java.util.HashSet<>()).add(p.path("computedAt").asString());
        }
        assertThat(computedAtByDate.values()).allSatisfy(c -> assertThat(c).hasSize(1));
        for (String d : dates) {
            assertThat(serve.get("api/jobs/gallery/plan?date=" + d).path("items").asLong()).as("once no plan runs, " + d + " is planned")
                    .isEqualTo(serve.images + 1);
        }

        assertThat(send("GET", "api/jobs/gallery/plan?date=2026-02-30", HttpRequest.BodyPublishers.noBody(), null, false).statusCode())
                .isEqualTo(400);
        assertThat(send("GET", "api/jobs/nope/plan", HttpRequest.BodyPublishers.noBody(), null, false).statusCode()).isEqualTo(404);
        assertThat(send("GET", "api/jobs/broken/plan", HttpRequest.BodyPublishers.noBody(), null, false).statusCode()).isEqualTo(409);
        // hostile names and dates: a clean problem, never a stack trace or the value run as a query
        for (String hostile : List.of("api/jobs/gallery/plan?date=2026-01-01%27%20OR%201%3D1--",
                "api/jobs/gallery/plan?date=..%2F..%2Fetc%2Fpasswd", "api/jobs/gallery/plan?date=%3Cscript%3E",
                "api/jobs/gallery/plan?date=999999999-01-01", "api/jobs/%3Cimg%20src%3Dx%3E/plan",
                "api/jobs/gallery%27%3B%20DROP%20TABLE%20vlm_run%3B--/plan")) {
            HttpResponse<String> r = send("GET", hostile, HttpRequest.BodyPublishers.noBody(), null, false);
            assertThat(r.statusCode()).as(hostile + ": " + r.body()).isBetween(400, 404);
            assertThat(r.headers().firstValue("Content-Type").orElse("")).as(hostile).startsWith("application/problem+json");
            assertThat(r.body()).as(hostile).doesNotContain("Exception").doesNotContain("\tat ");
        }
    }

    @Test
    void backfillQueuesTheRangeAndRetryAsksTheFailedItemsAgain() throws Exception {
        String from = serve.start.minusDays(20).toString(), to = serve.start.minusDays(18).toString();
        String path = "api/jobs/gallery/backfill?from=" + from + "&to=" + to;
        assertThat(send("POST", path, HttpRequest.BodyPublishers.noBody(), null, false).statusCode()).as("without CSRF").isEqualTo(403);
        HttpResponse<String> ok = post(path);
        assertThat(ok.statusCode()).as(ok.body()).isEqualTo(200);
        JsonNode r = ServeFixture.JSON.readTree(ok.body());
        assertThat(r.path("queued").asLong()).isEqualTo(3);
        assertThat(r.path("reprocess").asString()).isEqualTo("none");
        for (JsonNode run : r.path("runs")) assertThat(run.path("action").asString()).isEqualTo("started");
        for (int i = 0; i < 3; i++) {
            String date = serve.start.minusDays(20 - i).toString();
            awaitState(date, "success");
        }
        for (JsonNode run : serve.get("api/jobs/gallery/runs?limit=1000")) {
            if (run.path("logicalDate").asString().compareTo(to) <= 0 && run.path("logicalDate").asString().compareTo(from) >= 0) {
                assertThat(run.path("trigger").asString()).isEqualTo("backfill");
            }
        }
        JsonNode again = ServeFixture.JSON.readTree(post(path + "&reprocess=failed").body());
        assertThat(again.path("queued").asLong()).as("nothing failed").isZero();
        assertThat(again.path("runs").get(0).path("reason").asString()).contains("completed");

        // hostile ranges and modes: a problem each, nothing queued
        for (String bad : List.of("from=" + to + "&to=" + from, "from=2000-01-01&to=2026-01-01", "from=" + from + "&to=" + to + "&reprocess=all",
                "from=" + from, "from=2026-13-01&to=2026-13-02", "from=" + "9".repeat(5000) + "&to=" + to,
                "from=" + from + "&to=" + to + "&reprocess=%3Cscript%3E")) {
            HttpResponse<String> refused = post("api/jobs/gallery/backfill?" + bad);
            assertThat(refused.statusCode()).as(bad + ": " + refused.body()).isEqualTo(400);
            assertThat(refused.headers().firstValue("Content-Type")).contains("application/problem+json");
            assertThat(refused.body()).doesNotContain("<script>").doesNotContain("9".repeat(100));
        }
        assertThat(post("api/jobs/nope/backfill?from=" + from + "&to=" + to).statusCode()).isEqualTo(404);
        assertThat(post("api/jobs/broken/backfill?from=" + from + "&to=" + to).statusCode()).isEqualTo(409);

        // retry failed: a new attempt over the failed item (the text file, which fails again)
        JsonNode before = null;
        for (JsonNode run : serve.get("api/jobs/gallery/runs?limit=1000")) if (run.path("logicalDate").asString().equals(from)) before = run;
        long runId = before.path("runId").asLong();
        assertThat(serve.get("api/runs/" + runId).path("ledger").path("failed").asLong()).isEqualTo(1);
        HttpResponse<String> retry = post("api/jobs/gallery/runs/" + from + "/retry");
        assertThat(retry.statusCode()).as(retry.body()).isEqualTo(200);
        long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        JsonNode detail = serve.get("api/runs/" + runId);
        while (System.nanoTime() < deadline && !(detail.path("state").asString().equals("success")
                && detail.path("ledger").path("attempts").size() == 1
                && detail.path("ledger").path("attempts").get(0).path("status").asString().equals("COMPLETED"))) {
            Thread.sleep(300);
            detail = serve.get("api/runs/" + runId);
        }
        assertThat(detail.path("ledger").path("attempts").get(0).path("attempt").asInt()).as(detail.toString()).isEqualTo(2);
        assertThat(detail.path("ledger").path("attempts").get(0).path("status").asString()).isEqualTo("COMPLETED");
        assertThat(detail.path("counts").path("failed").asLong()).isEqualTo(1);
        long failedItem = detail.path("failures").get(0).path("itemId").asLong();
        JsonNode history = serve.get("api/runs/" + runId + "/items/" + failedItem + "/history");
        assertThat(history.path("itemKey").asString()).isEqualTo("not-an-image.jpg");
        // a done item's page lists the other runs that held its bytes (the catchup runs, the other backfilled dates)
        long doneItem = serve.get("api/runs/" + runId + "/results?status=done").path("items").get(0).path("id").asLong();
        assertThat(serve.get("api/runs/" + runId + "/items/" + doneItem + "/history").path("otherRuns").size()).isGreaterThanOrEqualTo(3);

        assertThat(post("api/jobs/gallery/runs/" + serve.start.minusDays(40) + "/retry").statusCode()).isEqualTo(404);
        assertThat(post("api/jobs/gallery/runs/not-a-date/retry").statusCode()).isEqualTo(400);
        assertThat(send("POST", "api/jobs/gallery/runs/" + from + "/retry", HttpRequest.BodyPublishers.noBody(), null, false).statusCode())
                .isEqualTo(403);
    }

    static HttpRequest.BodyPublisher multipart(String boundary, String fileName, String type, byte[] data) {
        String head = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"" + fileName
                + "\"\r\nContent-Type: " + type + "\r\n\r\n";
        String tail = "\r\n--" + boundary + "--\r\n";
        return HttpRequest.BodyPublishers.ofByteArrays(List.of(head.getBytes(StandardCharsets.UTF_8), data,
                tail.getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void playgroundStreamsAnswersAndKeepsTheConversation() throws Exception {
        String boundary = UUID.randomUUID().toString();
        String form = "multipart/form-data; boundary=" + boundary;
        HttpResponse<String> notImage = send("POST", "api/playground/sessions",
                multipart(boundary, "evil.jpg", "image/jpeg", "no picture here".getBytes()), form, true);
        assertThat(notImage.statusCode()).isEqualTo(415);
        assertThat(notImage.body()).containsIgnoringCase("not an image");

        byte[] cat = Files.readAllBytes(RepoPaths.root().resolve("samples/cat.jpg"));
        HttpResponse<String> up = send("POST", "api/playground/sessions", multipart(boundary, "cat.jpg", "image/jpeg", cat), form, true);
        assertThat(up.statusCode()).as(up.body()).isEqualTo(200);
        String session = ServeFixture.JSON.readTree(up.body()).path("id").asString();

        HttpResponse<String> first = send("POST", "api/playground/sessions/" + session + "/ask",
                HttpRequest.BodyPublishers.ofString("{\"template\":\"describe\",\"maxTokens\":12}"), "application/json", true);
        assertThat(first.statusCode()).isEqualTo(200);
        assertThat(first.headers().firstValue("Content-Type").orElse("")).startsWith("text/event-stream");
        assertThat(events(first.body(), "token")).isNotEmpty();
        String answer = ServeFixture.JSON.readTree(events(first.body(), "done").getFirst()).path("answer").asString();
        StringBuilder joined = new StringBuilder();
        for (String t : events(first.body(), "token")) joined.append(ServeFixture.JSON.readTree(t).path("text").asString());
        assertThat(joined.toString()).isEqualTo(answer);

        HttpResponse<String> second = send("POST", "api/playground/sessions/" + session + "/ask",
                HttpRequest.BodyPublishers.ofString("{\"template\":\"gallery/kind\"}"), "application/json", true);
        String label = ServeFixture.JSON.readTree(events(second.body(), "done").getFirst()).path("answer").asString();
        assertThat(label).as("a job task with labels is asked as a choice").isIn("photo", "document", "chart", "screenshot");

        JsonNode turns = serve.get("api/playground/sessions/" + session).path("turns");
        assertThat(turns.size()).isEqualTo(2);
        assertThat(turns.get(0).path("answer").asString()).isEqualTo(answer);

        assertThat(send("POST", "api/playground/sessions/" + session + "/ask",
                HttpRequest.BodyPublishers.ofString("{}"), "application/json", true).statusCode()).isEqualTo(400);
    }

    static List<String> events(String sse, String name) {
        List<String> out = new ArrayList<>();
        Matcher m = Pattern.compile("(?m)^event:" + name + "\\s*\\ndata:(.*)$").matcher(sse);
        while (m.find()) out.add(m.group(1));
        return out;
    }

    @Test
    void healthIncludesDatabaseAndInferenceAndMetricsCountItems() throws Exception {
        JsonNode health = serve.get("actuator/health");
        assertThat(health.path("status").asString()).isEqualTo("UP");
        assertThat(health.path("components").path("db").path("status").asString()).isEqualTo("UP");
        assertThat(health.path("components").path("inference").path("details").path("endpoint").asString()).isEqualTo(serve.vlm.baseUrl());

        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        String text = "";
        Pattern done = Pattern.compile("(?m)^vlm_items_total\\{job=\"gallery\",status=\"done\",task=\"caption\"} (\\d+)");
        while (System.nanoTime() < deadline) {
            text = send("GET", "actuator/prometheus", HttpRequest.BodyPublishers.noBody(), null, false).body();
            if (done.matcher(text).find()) break;
            Thread.sleep(1000);
        }
        Matcher m = done.matcher(text);
        assertThat(m.find()).as(text).isTrue();
        assertThat(Long.parseLong(m.group(1))).isGreaterThanOrEqualTo(serve.images);
        assertThat(text).containsPattern("vlm_inference_latency_seconds\\{job=\"gallery\",task=\"\\w+\",quantile=\"0.9\"} [0-9.]+")
                .contains("vlm_images_per_second{job=\"gallery\"}").contains("vlm_inference_in_flight")
                .contains("vlm_runs_active");
    }
}
