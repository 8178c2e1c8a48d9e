package io.vlmbatch.web;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.FunctionTimer;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.vlmbatch.inference.Endpoint;
import io.vlmbatch.inference.InferenceService;
import io.vlmbatch.schedule.BatchRunLauncher;
import io.vlmbatch.schedule.Scheduler;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.jdbc.core.JdbcTemplate;

/**
 * Pipeline metrics for Prometheus, taken from what the runs store rather than from hooks inside the
 * steps, so they count runs of every process on the database (CLI runs too): every few seconds the
 * results written since the last look are added to
 * <ul>
 *   <li>vlm_items_total{job,task,status} — task results done / failed;</li>
 *   <li>vlm_inference_latency_seconds{job,task} — request latency, with percentiles;</li>
 *   <li>vlm_inference_retries_total{job} — extra attempts the client needed;</li>
 * </ul>
 * plus gauges vlm_images_per_second{job} (images finished over the last minute), vlm_runs_active
 * (runs this instance executes) and vlm_inference_in_flight (requests on the wire of those runs).
 * Per inference endpoint of the runs of this instance (tag endpoint = its URL):
 * vlm_inference_endpoint_requests_total and _errors_total (attempts, and those that failed),
 * vlm_inference_endpoint_latency_seconds (answered attempts), vlm_inference_endpoint_up (1 in the pool, 0 out).
 */
public final class PipelineMetrics implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(PipelineMetrics.class);

    private final JdbcTemplate jdbc;
    private final MeterRegistry meters;
    private final BatchRunLauncher launcher;
    private final Map<String, Double> rates = new ConcurrentHashMap<>();
    private final ScheduledExecutorService timer =
            Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("metrics").factory());
    private OffsetDateTime watermark;
    /** What was already counted of each endpoint object (runs come and go; the meters are per URL and process). */
    private final Map<Endpoint, long[]> counted = new WeakHashMap<>();
    private final Map<String, long[]> endpointTotals = new ConcurrentHashMap<>();

    public PipelineMetrics(JdbcTemplate jdbc, MeterRegistry meters, Scheduler scheduler, BatchRunLauncher launcher) {
        this.jdbc = jdbc;
        this.meters = meters;
        this.launcher = launcher;
        Gauge.builder("vlm.runs.active", scheduler, Scheduler::activeRuns).description("runs this instance executes").register(meters);
        Gauge.builder("vlm.inference.in.flight", this, PipelineMetrics::inFlight)
                .description("inference requests on the wire for the runs of this instance").register(meters);
        // Only results written from now on count: the counters are per process, as Prometheus expects.
        this.watermark = jdbc.queryForObject("SELECT now()", OffsetDateTime.class);
    }

    /**
     * The time before which every result row is committed. Rows are stamped with now(), the start of
     * the writing transaction, and a chunk's transaction can stay open across several polls: the
     * bound stops at the oldest transaction still open on this database, so a row committed late is
     * counted by a later poll instead of never.
     */
    private OffsetDateTime settledUpTo() {
        return jdbc.queryForObject("""
                SELECT least(now(), coalesce(min(xact_start), now())) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL""",
                OffsetDateTime.class);
    }

    public void start(Duration every) {
        timer.scheduleWithFixedDelay(() -> {
            try {
                poll();
            } catch (RuntimeException e) {
                log.debug("metrics poll failed: {}", e.toString());
            }
        }, every.toMillis(), every.toMillis(), TimeUnit.MILLISECONDS);
    }

    synchronized void poll() {
        pollEndpoints();
        OffsetDateTime now = settledUpTo();
        jdbc.query("""
                SELECT v.job_name, r.task, r.status, r.latency_ms, coalesce(r.attempts, 1)
                FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id JOIN vlm_run v ON v.run_id = w.run_id
                WHERE r.updated_at >= ? AND r.updated_at < ?""", rs -> {
            String job = rs.getString(1), task = rs.getString(2);
            Counter.builder("vlm.items").description("task results by job, task and status")
                    .tags("job", job, "task", task, "status", rs.getString(3)).register(meters).increment();
            int ms = rs.getInt(4);
            if (!rs.wasNull()) {
                Timer.builder("vlm.inference.latency").description("chat completion latency, retries included")
                        .tags("job", job, "task", task).publishPercentiles(0.5, 0.9, 0.99).register(meters)
                        .record(Duration.ofMillis(ms));
            }
            int retries = rs.getInt(5) - 1;
            if (retries > 0) {
                Counter.builder("vlm.inference.retries").description("extra attempts of inference requests")
                        .tag("job", job).register(meters).increment(retries);
            }
        }, watermark, now);
        watermark = now;
        rates.replaceAll((k, v) -> 0.0);
        jdbc.query("""
                SELECT v.job_name, count(*) FROM vlm_work_item w JOIN vlm_run v ON v.run_id = w.run_id
                WHERE w.status <> 'pending' AND w.updated_at > now() - interval '60 seconds' GROUP BY 1""", rs -> {
            String job = rs.getString(1);
            if (!rates.containsKey(job)) {
                Gauge.builder("vlm.images.per.second", rates, m -> m.getOrDefault(job, 0.0))
                        .description("images finished per second over the last minute").tag("job", job).register(meters);
            }
            rates.put(job, rs.getLong(2) / 60.0);
        });
    }

    /** Adds what each live endpoint did since the last look to its URL's totals: {requests, errors, answered, latency ms}. */
    private void pollEndpoints() {
        for (InferenceService s : launcher.inferenceServices()) {
            List<Endpoint> endpoints;
            try {
                endpoints = s.client().endpoints();
            } catch (IllegalStateException notStarted) {
                continue;
            }
            for (Endpoint e : endpoints) {
                long[] now = {e.requests(), e.errors(), e.answered(), e.latencyMsTotal()};
                long[] before = counted.getOrDefault(e, new long[4]);
                long[] total = endpointTotals.computeIfAbsent(e.name(), this::registerEndpoint);
                synchronized (total) {
                    for (int i = 0; i < 4; i++) total[i] += now[i] - before[i];
                }
                counted.put(e, now);
            }
        }
    }

    private long[] registerEndpoint(String url) {
        long[] t = new long[4];
        FunctionCounter.builder("vlm.inference.endpoint.requests", t, a -> a[0])
                .description("attempts sent to an inference endpoint").tag("endpoint", url).register(meters);
        FunctionCounter.builder("vlm.inference.endpoint.errors", t, a -> a[1])
                .description("attempts that failed at an inference endpoint (no answer, 429, 5xx)").tag("endpoint", url).register(meters);
        FunctionTimer.builder("vlm.inference.endpoint.latency", t, a -> a[2], a -> a[3], TimeUnit.MILLISECONDS)
                .description("latency of answered attempts per inference endpoint").tag("endpoint", url).register(meters);
        Gauge.builder("vlm.inference.endpoint.up", this, m -> m.endpointUp(url))
                .description("1 while the endpoint is in its pool, 0 while it is taken out").tag("endpoint", url).register(meters);
        return t;
    }

    private double endpointUp(String url) {
        for (InferenceService s : launcher.inferenceServices()) {
            try {
                for (Endpoint e : s.client().endpoints()) if (e.name().equals(url)) return e.up() ? 1 : 0;
            } catch (IllegalStateException notStarted) {
                // starting
            }
        }
        return Double.NaN; // no run uses it now
    }

    private double inFlight() {
        int n = 0;
        for (InferenceService s : launcher.inferenceServices()) {
            try {
                n += s.client().inFlight();
            } catch (IllegalStateException notStarted) {
                // the run is still starting its server
            }
        }
        return n;
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
