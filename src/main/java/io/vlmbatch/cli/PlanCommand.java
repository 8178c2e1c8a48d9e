package io.vlmbatch.cli;

import io.vlmbatch.inference.InferenceService;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.ledger.LedgerStore;
import io.vlmbatch.ledger.PlanReport;
import io.vlmbatch.ledger.Planner;
import io.vlmbatch.ledger.RunEndpointListener;
import io.vlmbatch.run.RunInference;
import io.vlmbatch.source.ImageFetcher;
import io.vlmbatch.source.SourceSpec;
import io.vlmbatch.source.Sources;
import java.io.PrintStream;

/**
 * `vlm-batch plan JOB --date D [--json]`: what the run of that date would ask and reuse, and the GPU
 * time it would take at the rate of the last runs against the same endpoint and model. Nothing is run:
 * an external server is only asked which model it serves (GET /v1/models); the embedded one is not
 * started, its weights are known from the command line.
 */
public class PlanCommand {
    private final JobDefinition def;
    private final RunParameters params;
    private final RunInference inference;
    private final LedgerStore ledger;
    private final long maxBytes;
    private final PrintStream out = System.out;

    public PlanCommand(JobDefinition def, RunParameters params, RunInference inference, LedgerStore ledger, long maxBytes) {
        this.def = def;
        this.params = params;
        this.inference = inference;
        this.ledger = ledger;
        this.maxBytes = maxBytes;
    }

    public int execute(Invocation inv) throws Exception {
        try (InferenceService service = inference.open(def.inference());
             ImageFetcher fetcher = Sources.fetcher(def.source().s3Settings())) {
            return execute(inv, service, fetcher);
        }
    }

    private int execute(Invocation inv, InferenceService inference, ImageFetcher fetcher) throws Exception {
        if (!def.inference().embedded()) inference.start();
        String model = inference.ledgerModel();
        String endpoint = RunEndpointListener.endpointKey(def.inference());
        LedgerStore.Rate rate = ledger.rate(endpoint, model);
        SourceSpec source = io.vlmbatch.config.PipelineConfig.renderedSource(def, params);
        Planner.Plan plan = new Planner(ledger).plan(source, Sources.open(source, def.baseDir()),
                fetcher, maxBytes, def.tasks(), def.resize(), model, def.run().reuse(), rate);
        if (inv.json()) {
            out.println(PlanReport.json(def.name(), params.logicalDate().toString(), endpoint, plan));
        } else {
            String what = "job " + def.name() + " for " + params.logicalDate() + (params.params().isEmpty() ? "" : " [" + params.paramsKey() + "]");
            out.print(PlanReport.text(what + (def.run().reuse() ? "" : " (run.reuse: false)"), endpoint, plan));
        }
        return 0;
    }
}
