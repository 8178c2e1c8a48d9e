package io.vlmbatch.web;

import io.vlmbatch.image.ImageRejectedException;
import io.vlmbatch.store.ItemStatus;
import io.vlmbatch.store.WorkItem;
import java.io.IOException;
import java.time.Duration;
import org.springframework.http.CacheControl;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/** One run: detail (steps, counts, throughput, failures), its results page by page, and thumbnails. */
@RestController
@RequestMapping("/api/runs")
class RunsController {
    private final RunQueries queries;
    private final Thumbnails thumbnails;

    RunsController(RunQueries queries, Thumbnails thumbnails) {
        this.queries = queries;
        this.thumbnails = thumbnails;
    }

    @GetMapping("/{runId}")
    RunDetail run(@PathVariable long runId) {
        return queries.run(runId).orElseThrow(() -> ApiException.notFound("no run " + runId));
    }

    @GetMapping("/{runId}/results")
    ResultsPage results(@PathVariable long runId,
                                @RequestParam(defaultValue = "0") int page, @RequestParam(defaultValue = "24") int size,
                                @RequestParam(required = false) String status, @RequestParam(required = false) String task,
                                @RequestParam(required = false) String label, @RequestParam(required = false) String q) {
        if (queries.jobOfRun(runId).isEmpty()) throw ApiException.notFound("no run " + runId);
        if (page < 0) throw ApiException.bad("page must be >= 0");
        if (size < 1 || size > 200) throw ApiException.bad("size must be 1..200");
        ItemStatus wanted;
        try {
            wanted = blank(status) == null ? null : ItemStatus.parse(status);
        } catch (IllegalArgumentException e) {
            throw ApiException.bad(e.getMessage());
        }
        if (q != null && q.length() > 200) throw ApiException.bad("q is limited to 200 characters");
        return queries.results(runId, new RunQueries.ResultFilter(wanted, blank(task), blank(label), blank(q)), page, size);
    }

    /** One item's answers across retry attempts and across the runs, of any job, that held the same bytes. */
    @GetMapping("/{runId}/items/{itemId}/history")
    ItemHistory itemHistory(@PathVariable long runId, @PathVariable long itemId) {
        return queries.itemHistory(runId, itemId).orElseThrow(() -> ApiException.notFound("no item " + itemId + " in run " + runId));
    }

    /** The pages of the document that item {itemId} is a page of, in page order, with their answers. */
    @GetMapping("/{runId}/documents/{itemId}")
    ResultsPage document(@PathVariable long runId, @PathVariable long itemId,
                         @RequestParam(defaultValue = "0") int page, @RequestParam(defaultValue = "24") int size) {
        if (queries.jobOfRun(runId).isEmpty()) throw ApiException.notFound("no run " + runId);
        if (page < 0) throw ApiException.bad("page must be >= 0");
        if (size < 1 || size > 200) throw ApiException.bad("size must be 1..200");
        return queries.documentPages(runId, itemId, page, size)
                .orElseThrow(() -> ApiException.notFound("no page " + itemId + " of a document in run " + runId));
    }

    @GetMapping("/{runId}/items/{itemId}/thumbnail")
    ResponseEntity<byte[]> thumbnail(@PathVariable long runId, @PathVariable long itemId) {
        String job = queries.jobOfRun(runId).orElseThrow(() -> ApiException.notFound("no run " + runId));
        WorkItem item = queries.itemLineage(runId, itemId).orElseThrow(() -> ApiException.notFound("no item " + itemId + " in run " + runId));
        String uri = item.uri();
        try {
            byte[] jpeg = thumbnails.thumbnail(job, item);
            return ResponseEntity.ok().contentType(MediaType.IMAGE_JPEG)
                    .cacheControl(CacheControl.maxAge(Duration.ofHours(1)).cachePrivate()).body(jpeg);
        } catch (ImageRejectedException e) {
            throw new ApiException(HttpStatus.UNPROCESSABLE_ENTITY, "no thumbnail: " + e.getMessage());
        } catch (IOException e) {
            throw new ApiException(HttpStatus.NOT_FOUND, "cannot read " + uri + ": " + e.getMessage());
        }
    }

    private static String blank(String s) {
        return s == null || s.isBlank() ? null : s.strip();
    }
}
