package io.vlmbatch.ledger;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import tools.jackson.databind.json.JsonMapper;

/** A plan as `vlm-batch plan` prints it: lines for people, or one JSON object for scripts. */
public final class PlanReport {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    private PlanReport() {}

    public static String text(String what, String endpoint, Planner.Plan p) {
        StringBuilder b = new StringBuilder();
        b.append("plan for ").append(what).append(" (nothing was run)\n");
        b.append(String.format(Locale.ROOT, "  items:     %d (images, pages and archive members, one request per task each)%n", p.items()));
        if (p.documents() > 0) {
            b.append(String.format(Locale.ROOT, "  pages:     %d in %d document%s%n", p.pages(), p.documents(), p.documents() == 1 ? "" : "s"));
        }
        b.append(String.format(Locale.ROOT, "  reused:    %d (every answer already in the ledger; %d answers copied, no request)%n",
                p.reusedItems(), p.reusedAnswers()));
        b.append(String.format(Locale.ROOT, "  new:       %d (at least one task to ask)%n", p.newItems()));
        if (p.unreadable() > 0) {
            b.append(String.format(Locale.ROOT, "  unreadable: %d (would fail: cannot be read or its prompt cannot be filled)%n", p.unreadable()));
        }
        b.append(String.format(Locale.ROOT, "  requests:  %d to %s, model %s%n", p.requests(), endpoint, p.model()));
        Double est = p.estimatedSeconds();
        if (est == null) {
            b.append("  GPU time:  no estimate: no earlier completed run sent requests to this endpoint and model\n");
        } else {
            b.append(String.format(Locale.ROOT, "  GPU time:  about %s (%.3f s per request, measured on the last %d run%s: %d requests in %.1f s)%n",
                    duration(est), p.rate().secondsPerRequest(), p.rate().runs(), p.rate().runs() == 1 ? "" : "s",
                    p.rate().requests(), p.rate().seconds()));
        }
        return b.toString();
    }

    public static String json(String job, String date, String endpoint, Planner.Plan p) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("job", job);
        m.put("date", date);
        m.put("items", p.items());
        m.put("documents", p.documents());
        m.put("pages", p.pages());
        m.put("reused_items", p.reusedItems());
        m.put("new_items", p.newItems());
        m.put("unreadable_items", p.unreadable());
        m.put("requests", p.requests());
        m.put("reused_answers", p.reusedAnswers());
        m.put("endpoint", endpoint);
        m.put("model", p.model());
        m.put("estimated_seconds", p.estimatedSeconds());
        m.put("rate_runs", p.rate().runs());
        m.put("seconds_per_request", p.rate().known() ? p.rate().secondsPerRequest() : null);
        return JSON.writeValueAsString(m);
    }

    static String duration(double seconds) {
        long s = Math.round(seconds);
        if (s < 60) return s + " s";
        if (s < 3600) return (s / 60) + " min " + (s % 60) + " s";
        return (s / 3600) + " h " + (s % 3600 / 60) + " min";
    }
}
