package io.vlmbatch.web;

import io.vlmbatch.config.PipelineConfig;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.ledger.JobPlanner;
import io.vlmbatch.ledger.LedgerStore;
import io.vlmbatch.ledger.Planner;
import io.vlmbatch.run.Errors;
import io.vlmbatch.run.RunInference;
import io.vlmbatch.schedule.JobCatalog;
import io.vlmbatch.source.SourceSpec;
import java.time.Clock;
import java.time.Duration;
import java.time.LocalDate;
import java.util.Map;
import org.springframework.http.HttpStatus;

/**
 * The plan a job's page shows when asked ("Plan"): what `vlm-batch plan JOB --date D` prints, computed the
 * same way (Planner over the job's source for that date, the ledger, the rate of the last runs against
 * the same endpoint and model). Listing and hashing a whole source is expensive, so the plans go through a
 * {@link PlanCache}: one computation per job at a time, the last result of a job and date kept a short
 * while. The embedded server is not started; an external one is asked which model it serves.
 */
public class JobPlans {
    /**
     * estimatedSeconds and secondsPerRequest are null when no earlier completed run against this endpoint
     * and model sent requests ("no rate measured yet"). computedAt: when the listing started;
     * computedMillis: how long it took; ageMillis: how old the plan was when answered (0 < age: a kept
     * plan); keptSeconds: how long a plan is kept before it is computed again.
     */
    public record PlanView(String job, String date, boolean reuse, long items, long reusedItems, long newItems,
                           long unreadableItems, long requests, long reusedAnswers, String endpoint, String model,
                           Double estimatedSeconds, Double secondsPerRequest, int rateRuns,
                           String computedAt, long computedMillis, long ageMillis, long keptSeconds) {}

    /** What a plan found, before it is stamped with when it was computed. */
    private record Figures(String job, String date, boolean reuse, long items, long reusedItems, long newItems,
                           long unreadableItems, long requests, long reusedAnswers, String endpoint, String model,
                           Double estimatedSeconds, Double secondsPerRequest, int rateRuns) {}

    private final JobPlanner planner;
    private final PlanCache<Figures> cache;
    private final Clock clock;

    /** @param keep how long a computed plan is answered again before its source is listed anew */
    public JobPlans(RunInference inference, LedgerStore ledger, Duration keep, Clock clock) {
        this.planner = new JobPlanner(inference, ledger);
        this.cache = new PlanCache<>(keep, clock);
        this.clock = clock;
    }

    /** The plan of a job for a date: kept, shared with the request computing it, or computed now. */
    public PlanView plan(JobCatalog.Entry entry, LocalDate date) {
        PlanCache.Computed<Figures> c = cache.get(entry.name(), date, () -> compute(entry, date));
        Figures f = c.value();
        long age = Math.max(0, Duration.between(c.computedAt(), clock.instant()).toMillis() - c.computedMillis());
        return new PlanView(f.job(), f.date(), f.reuse(), f.items(), f.reusedItems(), f.newItems(), f.unreadableItems(),
                f.requests(), f.reusedAnswers(), f.endpoint(), f.model(), f.estimatedSeconds(), f.secondsPerRequest(),
                f.rateRuns(), c.computedAt().toString(), c.computedMillis(), age, cache.keep().toSeconds());
    }

    private Figures compute(JobCatalog.Entry entry, LocalDate date) {
        JobDefinition def = entry.definition();
        SourceSpec source;
        try {
            source = PipelineConfig.renderedSource(def, new RunParameters(date, Map.of()));
        } catch (IllegalArgumentException e) {
            throw new ApiException(HttpStatus.CONFLICT, "no plan without --param values: " + e.getMessage());
        }
        JobPlanner.Result r;
        try {
            r = planner.plan(def, source, io.vlmbatch.config.InferWorkerConfig.MAX_IMAGE_BYTES);
        } catch (JobPlanner.ModelUnknown e) {
            throw new ApiException(HttpStatus.BAD_GATEWAY, e.getMessage() + ": " + Errors.rootMessage(e));
        } catch (Exception e) {
            throw new ApiException(HttpStatus.CONFLICT, "cannot list the job's source for " + date + ": " + Errors.rootMessage(e));
        }
        Planner.Plan p = r.plan();
        return new Figures(def.name(), date.toString(), def.run().reuse(), p.items(), p.reusedItems(), p.newItems(),
                p.unreadable(), p.requests(), p.reusedAnswers(), r.endpoint(), r.model(), p.estimatedSeconds(),
                p.rate().known() ? p.rate().secondsPerRequest() : null, p.rate().runs());
    }
}
