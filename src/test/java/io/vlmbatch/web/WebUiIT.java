package io.vlmbatch.web;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.RepoPaths;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.Select;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The web UI in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium):
 * jobs → a job's grid of runs → a run's detail → its results gallery → a document's pages → the
 * playground with the tiny model. Screenshots of each page go to ${build.dir}/screenshots/.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class WebUiIT {
    Path tmp;
    ServeFixture serve;
    ChromeDriver browser;
    WebDriverWait wait;
    Path shots;

    @BeforeAll
    void start(@TempDir Path tmp) throws Exception {
        this.tmp = tmp;
        serve = new ServeFixture(tmp, true);
        serve.awaitCatchup(Duration.ofMinutes(4));
        shots = RepoPaths.buildDir().resolve("screenshots");
        Files.createDirectories(shots);
        ChromeOptions options = new ChromeOptions();
        options.setBinary(System.getProperty("chromium.binary", "/usr/bin/chromium"));
        options.addArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000", "--user-data-dir=" + Files.createDirectories(tmp.resolve("chromium")));
        ChromeDriverService service = new ChromeDriverService.Builder()
                .usingDriverExecutable(Path.of(System.getProperty("chromedriver", "/usr/bin/chromedriver")).toFile())
                .usingAnyFreePort().build();
        browser = new ChromeDriver(service, options);
        wait = new WebDriverWait(browser, Duration.ofSeconds(60));
    }

    @AfterAll
    void stop() throws Exception {
        if (browser != null) browser.quit();
        serve.close();
    }

    void shot(String name) throws Exception {
        Files.write(shots.resolve(name + ".png"), ((TakesScreenshot) browser).getScreenshotAs(OutputType.BYTES));
    }

    @Test
    void jobsThenRunGridThenRunDetailThenGallery() throws Exception {
        browser.get(serve.base);
        WebElement row = wait.until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("tr[data-job='gallery']")));
        assertThat(row.findElement(By.cssSelector(".next-run")).getText()).isNotEqualTo("—");
        assertThat(browser.findElement(By.id("jobs")).getText()).contains("broken.yaml:3");
        shot("1-jobs");

        row.findElement(By.cssSelector("a.job-link")).click();
        wait.until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("#grid a.cell")));
        List<WebElement> cells = browser.findElements(By.cssSelector("#grid a.cell.s-success"));
        assertThat(cells.size()).isGreaterThanOrEqualTo(3);
        assertThat(cells.getFirst().getCssValue("background-color")).isEqualTo("rgba(46, 157, 91, 1)");
        shot("2-job-grid");

        browser.findElement(By.cssSelector("tr[data-date='" + serve.start + "'] a.run-link")).click();
        WebElement done = wait.until(ExpectedConditions.presenceOfElementLocated(By.id("count-done")));
        assertThat(done.getText()).isEqualTo(Integer.toString(serve.images));
        assertThat(browser.findElement(By.id("count-failed")).getText()).isEqualTo("1");
        assertThat(browser.findElement(By.id("failures")).getText()).contains("not-an-image.jpg").containsIgnoringCase("not an image");
        assertThat(browser.findElement(By.id("steps")).getText()).contains("discover").contains("infer").contains("export");
        shot("3-run-detail");

        browser.findElement(By.id("gallery-link")).click();
        wait.until(ExpectedConditions.numberOfElementsToBe(By.cssSelector("#cards .card"), serve.images + 1));
        wait.until(d -> (Boolean) ((JavascriptExecutor) d).executeScript(
                "return [...document.querySelectorAll('#cards img')].filter(i => i.complete && i.naturalWidth > 0).length >= arguments[0]",
                serve.images));
        WebElement cat = browser.findElement(By.cssSelector(".card[data-item='cat.jpg']"));
        assertThat(cat.findElements(By.cssSelector(".answer"))).hasSize(2);
        assertThat(cat.findElement(By.cssSelector(".answer[data-task='kind'] .text")).getText())
                .isIn("photo", "document", "chart", "screenshot");
        shot("4-gallery");

        WebElement search = browser.findElement(By.id("search"));
        search.sendKeys("invoice");
        browser.findElement(By.id("apply")).click();
        wait.until(ExpectedConditions.textToBe(By.id("total"), "1 image"));
        assertThat(browser.findElement(By.cssSelector("#cards .card")).getAttribute("data-item")).isEqualTo("scanned-invoice.jpg");
        new Select(browser.findElement(By.name("status"))).selectByVisibleText("failed");
        browser.findElement(By.id("search")).clear();
        browser.findElement(By.id("apply")).click();
        wait.until(ExpectedConditions.presenceOfElementLocated(By.cssSelector(".card[data-item='not-an-image.jpg']")));
        assertThat(browser.findElement(By.id("total")).getText()).isEqualTo("1 image");
        shot("5-gallery-filtered");
    }

    /**
     * A run over a multi-page TIFF and a ZIP whose members are named with markup: the run page counts
     * documents, pages and the skipped member; the gallery shows each document as one card (its first
     * page's thumbnail, name, page count, states) that opens to its pages, each with a thumbnail rendered
     * from the page and its answers; no name runs as markup.
     */
    @Test
    void documentsShowAsOneCardThatOpensToTheirPagesAndHostileMemberNamesStayText() throws Exception {
        long runId = serve.awaitDocuments(Duration.ofMinutes(4));
        String pdf = "hostile.zip!/" + ServeFixture.HOSTILE_PDF;
        String member = "hostile.zip!/" + ServeFixture.HOSTILE_MEMBER;
        browser.get(serve.base + "#/playground");
        wait.until(ExpectedConditions.presenceOfElementLocated(By.id("upload")));

        go("#/run/" + runId);
        wait.until(ExpectedConditions.presenceOfElementLocated(By.id("count-documents")));
        assertThat(browser.findElement(By.id("count-items")).getText()).isEqualTo("6");
        assertThat(browser.findElement(By.id("count-documents")).getText()).isEqualTo("2");
        assertThat(browser.findElement(By.id("count-pages")).getText()).isEqualTo("5");
        assertThat(browser.findElement(By.id("count-skipped")).getText()).isEqualTo("1");
        assertThat(browser.findElement(By.id("count-done")).getText()).isEqualTo("6");
        shot("9-run-with-documents");

        go("#/run/" + runId + "/results");
        wait.until(ExpectedConditions.numberOfElementsToBe(By.cssSelector("#cards .card"), 3));
        assertThat(browser.findElement(By.id("total")).getText()).isEqualTo("1 image, 2 documents");
        wait.until(d -> (Boolean) js("return [...document.querySelectorAll('#cards img')].filter(i => i.complete && i.naturalWidth > 0).length === 3"));
        WebElement doc = browser.findElements(By.cssSelector("#cards .card.doc")).stream()
                .filter(c -> pdf.equals(c.getAttribute("data-item"))).findFirst().orElseThrow();
        assertThat(doc.findElement(By.cssSelector(".key")).getText()).isEqualTo(pdf);
        assertThat(doc.findElement(By.cssSelector(".pages")).getText()).isEqualTo("2 pages: 2 done");
        WebElement tiff = browser.findElement(By.cssSelector(".card.doc[data-item='stack.tif']"));
        assertThat(tiff.findElement(By.cssSelector(".pages")).getText()).isEqualTo("3 pages: 3 done");
        assertThat(js("return [...document.querySelectorAll('#cards .card:not(.doc)')].map(c => c.dataset.item)").toString())
                .isEqualTo("[" + member + "]");
        assertThat(browser.findElement(By.cssSelector("#cards .card:not(.doc) .key")).getText()).startsWith(member);
        assertNothingRan("a gallery of documents");
        shot("10-gallery-documents");

        doc.click();
        wait.until(ExpectedConditions.numberOfElementsToBe(By.cssSelector("#cards .card[data-page]"), 2));
        assertThat(browser.findElement(By.id("document-name")).getText()).isEqualTo(pdf);
        assertThat(browser.findElement(By.id("total")).getText()).isEqualTo("2 pages");
        assertThat(js("return [...document.querySelectorAll('#cards .card')].map(c => c.dataset.page)").toString()).isEqualTo("[1, 2]");
        // thumbnails made from each page (rendered at thumbnail size), not from the ZIP's bytes
        wait.until(d -> (Boolean) js("return [...document.querySelectorAll('#cards img')]"
                + ".filter(i => i.complete && i.naturalWidth > 0 && Math.max(i.naturalWidth, i.naturalHeight) <= 320).length === 2"));
        for (WebElement page : browser.findElements(By.cssSelector("#cards .card"))) {
            assertThat(page.findElements(By.cssSelector(".answer"))).hasSize(2);
            assertThat(page.findElement(By.cssSelector(".key")).getText()).startsWith("page " + page.getAttribute("data-page"));
        }
        assertNothingRan("a document's pages");
        shot("11-document-pages");

        browser.findElement(By.id("back")).click();
        wait.until(ExpectedConditions.numberOfElementsToBe(By.cssSelector("#cards .card"), 3));
        browser.findElement(By.cssSelector(".card.doc[data-item='stack.tif']")).click();
        wait.until(ExpectedConditions.numberOfElementsToBe(By.cssSelector("#cards .card[data-page]"), 3));
        wait.until(d -> (Boolean) js("return [...document.querySelectorAll('#cards img')].filter(i => i.complete && i.naturalWidth > 0).length === 3"));

        // a route to an item that is no page of a document, and one with markup, are "not found"
        go("#/run/" + runId + "/document/999999999");
        wait.until(ExpectedConditions.presenceOfElementLocated(By.id("error")));
        go("#/run/" + runId + "/document/1%22%3E%3Cimg%20src%3Dx%20onerror%3Dwindow.pwned%3D'route-doc'%3E");
        wait.until(ExpectedConditions.textToBePresentInElementLocated(By.id("not-found"), "onerror=window.pwned='route-doc'"));
        assertNothingRan("a document route");
    }

    @Test
    void playgroundAnswersStreamAndTheConversationGoesOn() throws Exception {
        browser.get(serve.base + "#/playground");
        WebElement upload = wait.until(ExpectedConditions.presenceOfElementLocated(By.id("upload")));
        upload.sendKeys(RepoPaths.root().resolve("samples/coffee.jpg").toString());
        wait.until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("#preview img")));
        wait.until(d -> (Boolean) ((JavascriptExecutor) d).executeScript(
                "const i = document.querySelector('#preview img'); return i.complete && i.naturalWidth > 0"));

        new Select(browser.findElement(By.id("template"))).selectByVisibleText("built-in: describe");
        assertThat(browser.findElement(By.id("question")).getAttribute("value")).isNotBlank();
        browser.findElement(By.id("ask")).click();
        wait.until(ExpectedConditions.numberOfElementsToBe(By.cssSelector("#chat .msg.assistant.complete"), 1));

        new Select(browser.findElement(By.id("template"))).selectByVisibleText("type a question…");
        browser.findElement(By.id("question")).sendKeys("What colour is the cup?");
        browser.findElement(By.id("ask")).click();
        wait.until(ExpectedConditions.numberOfElementsToBe(By.cssSelector("#chat .msg.assistant.complete"), 2));
        List<WebElement> user = browser.findElements(By.cssSelector("#chat .msg.user"));
        assertThat(user).hasSize(2);
        assertThat(user.get(1).getText()).isEqualTo("What colour is the cup?");
        assertThat(browser.findElements(By.cssSelector("#chat .msg.err"))).isEmpty();

        new Select(browser.findElement(By.id("template"))).selectByVisibleText("job gallery: kind");
        browser.findElement(By.id("ask")).click();
        wait.until(ExpectedConditions.numberOfElementsToBe(By.cssSelector("#chat .msg.assistant.complete"), 3));
        List<WebElement> answers = browser.findElements(By.cssSelector("#chat .msg.assistant"));
        assertThat(answers.get(2).getText()).isIn("photo", "document", "chart", "screenshot");
        shot("6-playground");
    }

    /**
     * A page left while its answers are on the way draws nothing: the results gallery is asked for and, once
     * its render has begun (its first fetch sent), the user goes on to the jobs page. Whatever order the
     * answers then come in, once every fetch of both pages has been answered the jobs page is shown and the
     * gallery never drew, not even for a moment (a MutationObserver watches the view throughout).
     */
    @Test
    void aPageLeftWhileItsAnswersAreOnTheWayNeverDrawsOverTheNextOne() throws Exception {
        long runId = -1;
        for (var r : serve.get("api/jobs/gallery/runs")) {
            if (r.path("state").asString().equals("success")) runId = r.path("runId").asLong();
        }
        assertThat(runId).as("a finished run of the gallery job").isPositive();
        browser.get(serve.base + "#/playground");
        wait.until(ExpectedConditions.presenceOfElementLocated(By.id("upload")));
        @SuppressWarnings("unchecked")
        var seen = (java.util.Map<String, Object>) ((JavascriptExecutor) browser).executeAsyncScript("""
                const done = arguments[arguments.length - 1];
                const view = document.getElementById('view');
                let galleryDrawn = false;
                const watch = new MutationObserver(() => { if (view.querySelector('#cards')) galleryDrawn = true; });
                watch.observe(view, { childList: true, subtree: true });
                // every fetch and body read of the pages, to know when all their answers are in
                const pending = [], fetch0 = window.fetch, json0 = Response.prototype.json, text0 = Response.prototype.text;
                const track = p => { pending.push(p); return p; };
                window.fetch = (...a) => track(fetch0(...a));
                Response.prototype.json = function () { return track(json0.call(this)); };
                Response.prototype.text = function () { return track(text0.call(this)); };
                const answered = async () => {
                  for (;;) {
                    const n = pending.length;
                    await Promise.allSettled(pending);
                    await new Promise(r => setTimeout(r, 0)); // the pages' continuations run before this task
                    if (pending.length === n) return;
                  }
                };
                // listeners run in the order added: the app's route() has begun each page when these run
                window.addEventListener('hashchange', () => {
                  window.addEventListener('hashchange', async () => {
                    await answered();
                    watch.disconnect();
                    window.fetch = fetch0;
                    Response.prototype.json = json0;
                    Response.prototype.text = text0;
                    done({ galleryDrawn, fetches: pending.length, hash: location.hash,
                           jobs: view.querySelector('#jobs') !== null, cards: view.querySelector('#cards') !== null });
                  }, { once: true });
                  location.hash = '#/';
                }, { once: true });
                location.hash = arguments[0];
                """, "#/run/" + runId + "/results");
        assertThat(seen).as("the gallery's fetches and the jobs page's were all answered").containsEntry("hash", "#/")
                .containsEntry("jobs", true).containsEntry("cards", false).containsEntry("galleryDrawn", false);
        assertThat(((Number) seen.get("fetches")).intValue()).as("the gallery's two fetches and body reads (its render ran to its end) and the jobs page's one").isGreaterThanOrEqualTo(6);
        assertThat(browser.findElement(By.id("jobs")).getText()).contains("gallery");
        assertThat(browser.findElements(By.id("cards"))).isEmpty();
    }

    Object js(String script, Object... args) {
        return ((JavascriptExecutor) browser).executeScript(script, args);
    }

    /**
     * The item ledger in the UI: a job's page shows the plan of a date before "Trigger" and a backfill form
     * (a hostile range gets the API's problem as text); a run's page shows reused / new / failed and
     * "Retry failed", whose attempt then shows; an item's page shows its answers across attempts and runs.
     */
    @Test
    void planBackfillRetryAndAnItemsAnswersAcrossRuns() throws Exception {
        // opening the page lists nothing: a hint until "Plan" is pressed; Trigger needs no plan
        browser.get(serve.base + "#/job/gallery");
        browser.navigate().refresh(); // a fresh page: its resource timings are the plan requests it sends
        wait.until(ExpectedConditions.presenceOfElementLocated(By.id("plan-hint")));
        js("performance.setResourceTimingBufferSize(100000)");
        assertThat(browser.findElements(By.id("plan-items"))).isEmpty();
        String triggered = serve.start.minusDays(35).toString();
        js("const d = document.getElementById('plan-date'); d.value = arguments[0]; d.dispatchEvent(new Event('change'))", triggered);
        browser.findElement(By.id("plan-trigger")).click();
        wait.until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("#runs tr[data-date='" + triggered + "']")));
        awaitSuccess(triggered);
        assertThat(planRequests()).as("no plan was asked for").isZero();

        browser.findElement(By.id("plan-refresh")).click();
        WebElement items = wait.until(ExpectedConditions.presenceOfElementLocated(By.id("plan-items")));
        assertThat(items.getText()).isEqualTo(Integer.toString(serve.images + 1));
        assertThat(Long.parseLong(browser.findElement(By.id("plan-reused")).getText())).isPositive();
        assertThat(browser.findElement(By.id("plan-gpu")).getText()).as("the catchup runs measured a rate").isNotEqualTo("—");
        assertThat(browser.findElement(By.id("plan-trigger")).getText()).isEqualTo("Trigger");
        assertThat(browser.findElement(By.id("plan-computed")).getText())
                .matches("plan of " + triggered + " computed (just now|[0-9]+ s ago) in [0-9.]+ (ms|s) · kept 60 s, then Plan lists the source again");
        assertThat(planRequests()).isEqualTo(1);
        shot("9-job-plan");
        // the page's re-render (a reload here) shows the plan received, without asking again; another date shows the hint
        go("#/");
        wait.until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("tr[data-job='gallery']")));
        go("#/job/gallery");
        wait.until(ExpectedConditions.presenceOfElementLocated(By.id("plan-items")));
        wait.until(ExpectedConditions.textMatches(By.id("plan-age"), java.util.regex.Pattern.compile("[0-9]+ s ago")));
        js("const d = document.getElementById('plan-date'); d.value = arguments[0]; d.dispatchEvent(new Event('change'))",
                serve.start.minusDays(36).toString());
        wait.until(ExpectedConditions.presenceOfElementLocated(By.id("plan-hint")));
        assertThat(planRequests()).isEqualTo(1);
        // a date the server refuses: its problem shows as text
        js("const d = document.getElementById('plan-date'); d.type = 'text'; d.value = '2026-02-30'");
        browser.findElement(By.id("plan-refresh")).click();
        assertThat(wait.until(ExpectedConditions.presenceOfElementLocated(By.id("plan-error"))).getText()).isNotBlank();

        String from = serve.start.minusDays(30).toString(), to = serve.start.minusDays(29).toString();
        js("document.getElementById('backfill-from').value = arguments[0]; document.getElementById('backfill-to').value = arguments[1]",
                to, from);
        browser.findElement(By.id("backfill-go")).click();
        assertThat(wait.until(ExpectedConditions.presenceOfElementLocated(By.id("backfill-error"))).getText()).contains("before it starts");
        js("document.getElementById('backfill-from').value = arguments[0]; document.getElementById('backfill-to').value = arguments[1]",
                from, to);
        new Select(browser.findElement(By.id("backfill-mode"))).selectByValue("failed");
        browser.findElement(By.id("backfill-go")).click();
        wait.until(ExpectedConditions.numberOfElementsToBe(By.cssSelector("#backfill-runs tr[data-date]"), 2));
        assertThat(browser.findElement(By.id("backfill-summary")).getText()).contains("2 queued, 0 skipped");
        assertThat(browser.findElements(By.cssSelector("#backfill-runs td.action"))).extracting(WebElement::getText)
                .containsExactly("started", "started");
        shot("10-backfill");

        long runId = -1;
        long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        while (System.nanoTime() < deadline && runId < 0) {
            for (var r : serve.get("api/jobs/gallery/runs?limit=1000")) {
                if (r.path("logicalDate").asString().equals(from) && r.path("state").asString().equals("success")) runId = r.path("runId").asLong();
            }
            Thread.sleep(300);
        }
        assertThat(runId).as("the backfilled run of " + from + " succeeded").isPositive();
        go("#/run/" + runId);
        wait.until(ExpectedConditions.presenceOfElementLocated(By.id("count-reused")));
        assertThat(Long.parseLong(browser.findElement(By.id("count-reused")).getText())
                + Long.parseLong(browser.findElement(By.id("count-asked")).getText())).isEqualTo(serve.images);
        assertThat(Long.parseLong(browser.findElement(By.id("count-reused")).getText())).as("the catchup runs saw these bytes").isPositive();
        assertThat(browser.findElement(By.id("count-ledger-failed")).getText()).isEqualTo("1");
        browser.findElement(By.id("retry-failed")).click();
        wait.until(ExpectedConditions.textToBePresentInElementLocated(By.id("attempts"), "COMPLETED"));
        assertThat(browser.findElement(By.id("attempts")).getText()).contains("all tasks");
        shot("11-run-ledger");

        browser.findElement(By.cssSelector("#failures a.item-link")).click();
        wait.until(ExpectedConditions.textToBe(By.id("item-key"), "not-an-image.jpg"));
        assertThat(browser.findElement(By.id("view")).getText()).containsIgnoringCase("not an image");

        // --reprocess completed from the form: a new attempt over every item, whose answers come back from the ledger
        go("#/job/gallery");
        wait.until(ExpectedConditions.presenceOfElementLocated(By.id("backfill-form")));
        js("document.getElementById('backfill-from').value = arguments[0]; document.getElementById('backfill-to').value = arguments[0]", from);
        new Select(browser.findElement(By.id("backfill-mode"))).selectByValue("completed");
        browser.findElement(By.id("backfill-go")).click();
        wait.until(ExpectedConditions.textToBePresentInElementLocated(By.id("backfill-runs"), "rerun"));
        deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        var attempts = serve.get("api/runs/" + runId).path("ledger").path("attempts");
        while (System.nanoTime() < deadline && !(attempts.size() == 2 && attempts.get(0).path("status").asString().equals("COMPLETED"))) {
            Thread.sleep(300);
            attempts = serve.get("api/runs/" + runId).path("ledger").path("attempts");
        }
        assertThat(attempts.get(0).path("attempt").asInt()).as(attempts.toString()).isEqualTo(3);

        // a done item: the answers attempt 3 replaced, the run they were reused from, the other runs that held its bytes
        long doneItem = serve.get("api/runs/" + runId + "/results?status=done&q=cat.jpg").path("items").get(0).path("id").asLong();
        go("#/run/" + runId + "/item/" + doneItem);
        wait.until(ExpectedConditions.textToBe(By.id("item-key"), "cat.jpg"));
        assertThat(browser.findElement(By.id("answers-replaced")).getText()).contains("replaced by attempt 3");
        assertThat(browser.findElements(By.cssSelector("#answers-now a.reused-from"))).hasSize(2);
        browser.findElement(By.cssSelector("#answers-now a.reused-from")).click();
        wait.until(ExpectedConditions.presenceOfElementLocated(By.id("count-done")));
        assertThat(browser.getCurrentUrl()).doesNotEndWith("#/run/" + runId).matches(".*#/run/[0-9]+$");

        String answer = "<img src=x onerror=window.pwned='item-answer'>";
        try (var db = java.sql.DriverManager.getConnection(serve.pg.jdbcUrl(), serve.pg.user(), serve.pg.password());
             var update = db.prepareStatement("UPDATE vlm_result SET answer = ? WHERE work_item_id = ? AND task = 'caption'")) {
            update.setString(1, answer);
            update.setLong(2, doneItem);
            assertThat(update.executeUpdate()).isEqualTo(1);
        }
        go("#/run/" + runId + "/item/" + doneItem);
        wait.until(ExpectedConditions.textToBe(By.id("item-key"), "cat.jpg"));
        assertThat(browser.findElement(By.id("answers-now")).getText()).contains(answer);
        assertThat(browser.findElements(By.cssSelector("#other-runs .other-run")).size()).isGreaterThanOrEqualTo(3);
        assertNothingRan("an item page");
        shot("12-item-history");
        go("#/run/" + runId + "/item/1%3Cimg%20src%3Dx%20onerror%3Dwindow.pwned%3D'route-item'%3E");
        wait.until(ExpectedConditions.textToBePresentInElementLocated(By.id("not-found"), "onerror=window.pwned='route-item'"));
        assertNothingRan("an item route");
    }

    /** Plan requests this page has sent (the browser's resource timing). */
    long planRequests() {
        return ((Number) js("return performance.getEntriesByType('resource').filter(e => /\\/api\\/jobs\\/[^/]+\\/plan/.test(e.name)).length"))
                .longValue();
    }

    void awaitSuccess(String date) throws Exception {
        long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        String state = "";
        while (System.nanoTime() < deadline && !state.equals("success")) {
            for (var r : serve.get("api/jobs/gallery/runs?limit=1000")) {
                if (r.path("logicalDate").asString().equals(date)) state = r.path("state").asString();
            }
            if (!state.equals("success")) Thread.sleep(300);
        }
        assertThat(state).as("the run triggered for " + date).isEqualTo("success");
    }

    void go(String hash) {
        js("location.hash = arguments[0]", hash);
    }

    void assertNothingRan(String where) throws InterruptedException {
        Thread.sleep(700); // an <img src=x onerror=...> fires once its load has failed, a moment after it is inserted
        assertThat(js("return window.pwned === undefined ? null : String(window.pwned)")).as("script ran on " + where).isNull();
        assertThat(browser.findElements(By.cssSelector("#view img[src='x']"))).as("markup inserted on " + where).isEmpty();
    }

    /**
     * Markup in a file name, a job file's name and content, an answer in the database and the URL's route
     * shows as text and never runs; the Content-Security-Policy is in force (an inline handler injected by
     * hand is blocked) and the app's own pages cause no violation of it.
     */
    @Test
    void hostileNamesAnswersAndRoutesShowAsTextAndNeverRun() throws Exception {
        long runId = -1;
        for (var r : serve.get("api/jobs/gallery/runs")) {
            if (r.path("state").asString().equals("success")) runId = r.path("runId").asLong();
        }
        String answer = "<img src=x onerror=window.pwned='answer'>";
        try (var db = java.sql.DriverManager.getConnection(serve.pg.jdbcUrl(), serve.pg.user(), serve.pg.password());
             var update = db.prepareStatement("""
                     UPDATE vlm_result r SET answer = ? FROM vlm_work_item w
                     WHERE r.work_item_id = w.id AND w.run_id = ? AND w.item_key = 'coffee.jpg' AND r.task = 'caption'""")) {
            update.setString(1, answer);
            update.setLong(2, runId);
            assertThat(update.executeUpdate()).isEqualTo(1);
        }

        browser.get(serve.base + "#/playground");
        wait.until(ExpectedConditions.presenceOfElementLocated(By.id("upload")));
        js("window.violations = []; document.addEventListener('securitypolicyviolation',"
                + " e => window.violations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber))");

        go("#/");
        wait.until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("tr[data-job='gallery']")));
        assertThat(browser.findElement(By.id("jobs")).getText())
                .contains(ServeFixture.HOSTILE_JOB_FILE.replace(".yaml", ""))
                .contains("<img src=x onerror=window.pwned='job-name'>");
        assertNothingRan("the jobs page");

        go("#/run/" + runId + "/results");
        wait.until(ExpectedConditions.numberOfElementsToBe(By.cssSelector("#cards .card"), serve.images + 1));
        assertThat(js("return [...document.querySelectorAll('#cards .card')].filter(c => c.dataset.item === arguments[0])"
                + ".map(c => c.querySelector('.key').textContent.trim())", ServeFixture.HOSTILE_IMAGE).toString())
                .contains(ServeFixture.HOSTILE_IMAGE);
        assertThat(browser.findElement(By.cssSelector(".card[data-item='coffee.jpg'] .answer[data-task='caption'] .text")).getText())
                .isEqualTo(answer);
        assertNothingRan("the gallery");
        shot("7-hostile-gallery");

        go("#/run/" + runId);
        wait.until(ExpectedConditions.presenceOfElementLocated(By.id("count-done")));
        assertThat(((Number) js("return document.querySelector('#progress .done').getBoundingClientRect().width")).doubleValue())
                .as("the progress bar's width is set without a style attribute").isPositive();
        assertNothingRan("the run page");

        // hostile routes: markup as a job name, markup and a path break-out as a run id, a malformed escape
        go("#/job/%3Cimg%20src%3Dx%20onerror%3Dwindow.pwned%3D'route-job'%3E");
        wait.until(ExpectedConditions.textToBePresentInElementLocated(By.id("not-found"), "<img src=x onerror=window.pwned='route-job'>"));
        assertNothingRan("a job route");
        go("#/run/" + runId + "%2F%22%3E%3Cimg%20src%3Dx%20onerror%3Dwindow.pwned%3D'route-run'%3E%2F../results");
        wait.until(ExpectedConditions.textToBePresentInElementLocated(By.id("not-found"), "onerror=window.pwned='route-run'"));
        assertNothingRan("a run route");
        go("#/run/%E0%A4%A/results");
        wait.until(ExpectedConditions.presenceOfElementLocated(By.id("error")));
        assertNothingRan("a malformed route");
        shot("8-hostile-route");

        assertThat(js("return window.violations")).as("the app's own pages keep to the policy").asList().isEmpty();
        js("document.getElementById('view').insertAdjacentHTML('beforeend', '<img src=\"x\" onerror=\"window.cspBypassed = 1\">')");
        Thread.sleep(700);
        assertThat(js("return window.cspBypassed === undefined")).as("an inline handler is blocked by the policy").isEqualTo(true);
        assertThat(js("return window.violations.join('\\n')").toString()).contains("script-src");
    }
}
