package io.vlmbatch.ledger;

import io.vlmbatch.inference.InferenceService;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.run.RunInference;
import io.vlmbatch.source.ImageFetcher;
import io.vlmbatch.source.SourceSpec;
import io.vlmbatch.source.Sources;

/**
 * The plan of a job's run, for `vlm-batch plan` and the job page alike: the model its endpoint serves
 * (an external server is asked, GET /v1/models; the embedded one is not started, its weights are known),
 * the rate of the last runs against that endpoint and model, then {@link Planner} over the job's source
 * rendered for the run's date. Nothing is run.
 */
public final class JobPlanner {
    /** The plan, with the endpoint and model its fingerprints and rate are for. */
    public record Result(String endpoint, String model, Planner.Plan plan) {}

    /** The job's inference server did not say which model it serves: without it no fingerprint is known. */
    public static final class ModelUnknown extends Exception {
        ModelUnknown(Exception cause) {
            super("cannot ask the inference server which model it serves", cause);
        }
    }

    private final RunInference inference;
    private final LedgerStore ledger;

    public JobPlanner(RunInference inference, LedgerStore ledger) {
        this.inference = inference;
        this.ledger = ledger;
    }

    /**
     * @param source   the job's source rendered for the run's date and parameters
     * @param maxBytes the largest image the run reads (as the run caps it)
     * @throws ModelUnknown when the external server cannot be asked; anything else: the source cannot be listed
     */
    public Result plan(JobDefinition def, SourceSpec source, long maxBytes) throws Exception {
        try (InferenceService service = inference.open(def.inference());
             ImageFetcher fetcher = Sources.fetcher(def.source().s3Settings())) {
            if (!def.inference().embedded()) {
                try {
                    service.start();
                } catch (Exception e) {
                    throw new ModelUnknown(e);
                }
            }
            String model = service.ledgerModel();
            String endpoint = RunEndpointListener.endpointKey(def.inference());
            LedgerStore.Rate rate = ledger.rate(endpoint, model);
            Planner.Plan plan = new Planner(ledger).plan(source, Sources.open(source, def.baseDir()), fetcher, maxBytes,
                    def.tasks(), def.resize(), model, def.run().reuse(), rate);
            return new Result(endpoint, model, plan);
        }
    }
}
