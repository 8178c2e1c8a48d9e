package io.vlmbatch.web;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.vlmbatch.run.Errors;
import io.vlmbatch.image.ImageRejectedException;
import io.vlmbatch.inference.ChatRequest;
import io.vlmbatch.inference.InferenceService;
import io.vlmbatch.template.TextTemplate;
import io.vlmbatch.job.TaskSpec;
import io.vlmbatch.schedule.JobCatalog;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.multipart.MultipartFile;
import org.springframework.web.servlet.mvc.method.annotation.SseEmitter;

/**
 * Ask about one uploaded image, as many questions as you like: each answer streams in (server-sent
 * events "token" with {"text"}, then "done" with {"answer"} or "error" with {"message"}), and later
 * questions see the earlier ones. Questions are typed, or taken from a template: the built-in ones or
 * any task of a loaded job (a task with labels is asked as a choice, as in the batch run).
 */
@RestController
@RequestMapping("/api/playground")
class PlaygroundController {
    /**
     * A person waits on a playground answer; a batch run's requests (priority 0) do not. When runs and the playground
     * share a server, a question overtakes the batch work queued there (servers that take no priorities ignore it).
     */
    static final int INTERACTIVE_PRIORITY = -1;

    private final PlaygroundSessions sessions;
    private final InferenceService inference;
    private final JobCatalog catalog;
    private final Timer latency;
    private final AtomicInteger inFlight;

    PlaygroundController(PlaygroundSessions sessions, @Qualifier("playgroundInference") InferenceService inference, JobCatalog catalog,
                         MeterRegistry meters) {
        this.sessions = sessions;
        this.inference = inference;
        this.catalog = catalog;
        this.latency = Timer.builder("vlm.playground.latency").description("time to a whole playground answer")
                .publishPercentiles(0.5, 0.9, 0.99).register(meters);
        this.inFlight = meters.gauge("vlm.playground.in.flight", new AtomicInteger());
    }

    record Template(String id, String label, String text, List<String> labels, int maxTokens) {}

    @GetMapping("/templates")
    List<Template> templates() {
        List<Template> out = new ArrayList<>();
        for (String name : List.of("describe", "ocr")) {
            out.add(new Template(name, "built-in: " + name, TextTemplate.builtIn(name).text(), List.of(), 256));
        }
        for (JobCatalog.Entry e : catalog.usable()) {
            for (TaskSpec t : e.definition().tasks()) {
                out.add(new Template(e.name() + "/" + t.name(), "job " + e.name() + ": " + t.name(), t.template().text(),
                        t.labels(), t.maxTokens()));
            }
        }
        return out;
    }

    @PostMapping(path = "/sessions", consumes = MediaType.MULTIPART_FORM_DATA_VALUE)
    Map<String, Object> upload(@RequestParam("image") MultipartFile image) throws IOException {
        if (image.isEmpty()) throw ApiException.bad("the upload is empty");
        String type = image.getContentType();
        if (type != null && !type.startsWith("image/") && !type.equals("application/octet-stream")) {
            throw new ApiException(HttpStatus.UNSUPPORTED_MEDIA_TYPE, "not an image upload (" + type + ")");
        }
        String name = image.getOriginalFilename() == null ? "upload" : image.getOriginalFilename().replaceAll("[^\\w.-]", "_");
        try {
            PlaygroundSessions.Session s = sessions.create(name, image.getBytes());
            return Map.of("id", s.id(), "fileName", name, "width", s.image().originalWidth(), "height", s.image().originalHeight());
        } catch (ImageRejectedException e) {
            throw new ApiException(HttpStatus.UNSUPPORTED_MEDIA_TYPE, e.getMessage());
        }
    }

    @GetMapping("/sessions/{id}")
    Map<String, Object> session(@PathVariable String id) {
        PlaygroundSessions.Session s = session0(id);
        return Map.of("id", s.id(), "fileName", s.fileName(), "turns", s.turns());
    }

    @GetMapping("/sessions/{id}/image")
    ResponseEntity<byte[]> image(@PathVariable String id) {
        PlaygroundSessions.Session s = session0(id);
        return ResponseEntity.ok().contentType(MediaType.parseMediaType(s.image().mimeType())).body(s.image().bytes());
    }

    record Ask(String question, String template, Integer maxTokens) {}

    // No `produces`: a client that does not accept text/event-stream gets the request's real problem, not a 406
    @PostMapping(path = "/sessions/{id}/ask")
    SseEmitter ask(@PathVariable String id, @RequestBody Ask ask) {
        PlaygroundSessions.Session s = session0(id);
        String question;
        List<String> labels = List.of();
        int maxTokens = ask.maxTokens() == null ? 256 : ask.maxTokens();
        if (maxTokens < 1 || maxTokens > 4096) throw ApiException.bad("maxTokens must be 1..4096");
        if (ask.template() != null && !ask.template().isBlank()) {
            Template t = templates().stream().filter(x -> x.id().equals(ask.template())).findFirst()
                    .orElseThrow(() -> ApiException.bad("no template " + ask.template()));
            Map<String, String> vars = new HashMap<>(Map.of("file_name", s.fileName(), "item_key", s.fileName(), "uri", s.fileName(),
                    "labels", String.join(", ", t.labels())));
            try {
                question = new TextTemplate(t.id(), t.text()).render(vars);
            } catch (IllegalArgumentException e) {
                throw ApiException.bad(e.getMessage());
            }
            labels = t.labels();
            if (ask.maxTokens() == null) maxTokens = t.maxTokens();
        } else if (ask.question() != null && !ask.question().isBlank()) {
            question = ask.question().strip();
            if (question.length() > 8000) throw ApiException.bad("the question is limited to 8000 characters");
        } else {
            throw ApiException.bad("give a question or a template");
        }
        ChatRequest request = new ChatRequest(null, s.image().dataUrl(), s.turns(), question, maxTokens, null, null, null, labels,
                INTERACTIVE_PRIORITY);
        SseEmitter emitter = new SseEmitter(600_000L);
        String q = question;
        Thread.ofVirtual().name("playground-" + id).start(() -> {
            inFlight.incrementAndGet();
            Timer.Sample sample = Timer.start();
            try {
                emitter.send(SseEmitter.event().name("question").data(Map.of("text", q), MediaType.APPLICATION_JSON));
                inference.start(); // the embedded server starts on the first question
                String answer = inference.client().stream(request, piece -> {
                    try {
                        emitter.send(SseEmitter.event().name("token").data(Map.of("text", piece), MediaType.APPLICATION_JSON));
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e); // the browser went away: stop reading
                    }
                });
                s.add(new ChatRequest.Turn(q, answer));
                emitter.send(SseEmitter.event().name("done").data(Map.of("answer", answer), MediaType.APPLICATION_JSON));
                emitter.complete();
            } catch (Exception e) {
                try {
                    emitter.send(SseEmitter.event().name("error").data(Map.of("message", Errors.rootMessage(e)), MediaType.APPLICATION_JSON));
                    emitter.complete();
                } catch (Exception gone) {
                    emitter.completeWithError(e);
                }
            } finally {
                sample.stop(latency);
                inFlight.decrementAndGet();
            }
        });
        return emitter;
    }

    private PlaygroundSessions.Session session0(String id) {
        return sessions.get(id).orElseThrow(() -> ApiException.notFound("no playground session " + id + " (sessions end after an idle hour)"));
    }
}
