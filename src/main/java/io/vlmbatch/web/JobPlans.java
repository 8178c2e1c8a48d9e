package io.vlmbatch.web;

import io.vlmbatch.config.PipelineConfig;
import io.vlmbatch.inference.InferenceService;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.ledger.LedgerStore;
import io.vlmbatch.ledger.Planner;
import io.vlmbatch.ledger.RunEndpointListener;
import io.vlmbatch.run.Errors;
import io.vlmbatch.run.RunInference;
import io.vlmbatch.schedule.JobCatalog;
import io.vlmbatch.source.ImageFetcher;
import io.vlmbatch.source.SourceSpec;
import io.vlmbatch.source.Sources;
import java.time.LocalDate;
import java.util.Map;
import org.springframework.http.HttpStatus;

/**
 * The plan a job's page shows before "Trigger": what `vlm-batch plan JOB --date D` prints, computed the
 * same way (Planner over the job's source for that date, the ledger, the rate of the last runs against
 * the same endpoint and model). The embedded server is not started; an external one is asked which
 * model it serves.
 */
public class JobPlans {
    /** Runs whose rate the estimate averages, as `vlm-batch plan` does. */
    static final int RATE_RUNS = 5;

    /**
     * estimatedSeconds and secondsPerRequest are null when no earlier completed run against this endpoint
     * and model sent requests ("no rate measured yet").
     */
    public record PlanView(String job, String date, boolean reuse, long items, long reusedItems, long newItems,
                           long unreadableItems, long requests, long reusedAnswers, String endpoint, String model,
                           Double estimatedSeconds, Double secondsPerRequest, int rateRuns) {}

    private final RunInference inference;
    private final LedgerStore ledger;

    public JobPlans(RunInference inference, LedgerStore ledger) {
        this.inference = inference;
        this.ledger = ledger;
    }

    public PlanView plan(JobCatalog.Entry entry, LocalDate date) {
        JobDefinition def = entry.definition();
        SourceSpec source;
        try {
            source = PipelineConfig.renderedSource(def, new RunParameters(date, Map.of()));
        } catch (IllegalArgumentException e) {
            throw new ApiException(HttpStatus.CONFLICT, "no plan without --param values: " + e.getMessage());
        }
        try (InferenceService inference = this.inference.open(def.inference());
             ImageFetcher fetcher = Sources.fetcher(def.source().s3Settings())) {
            if (!def.inference().embedded()) {
                try {
                    inference.start();
                } catch (Exception e) {
                    throw new ApiException(HttpStatus.BAD_GATEWAY, "cannot ask the inference server which model it serves: "
                            + Errors.rootMessage(e));
                }
            }
            String model = inference.ledgerModel();
            String endpoint = RunEndpointListener.endpointKey(def.inference());
            LedgerStore.Rate rate = ledger.rate(endpoint, model, RATE_RUNS);
            Planner.Plan p;
            try {
                p = new Planner(ledger).plan(source, Sources.open(source, def.baseDir()), fetcher, io.vlmbatch.config.InferWorkerConfig.MAX_IMAGE_BYTES,
                        def.tasks(), def.resize(), model, def.run().reuse(), rate);
            } catch (Exception e) {
                throw new ApiException(HttpStatus.CONFLICT, "cannot list the job's source for " + date + ": " + Errors.rootMessage(e));
            }
            return new PlanView(def.name(), date.toString(), def.run().reuse(), p.items(), p.reusedItems(), p.newItems(),
                    p.unreadable(), p.requests(), p.reusedAnswers(), endpoint, model, p.estimatedSeconds(),
                    rate.known() ? rate.secondsPerRequest() : null, rate.runs());
        }
    }
}
