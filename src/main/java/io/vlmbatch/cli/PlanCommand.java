package io.vlmbatch.cli;

import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.ledger.JobPlanner;
import io.vlmbatch.ledger.LedgerStore;
import io.vlmbatch.ledger.PlanReport;
import io.vlmbatch.run.RunInference;
import io.vlmbatch.source.SourceSpec;
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
        SourceSpec source = io.vlmbatch.config.PipelineConfig.renderedSource(def, params);
        JobPlanner.Result r;
        try {
            r = new JobPlanner(inference, ledger).plan(def, source, maxBytes);
        } catch (JobPlanner.ModelUnknown e) {
            throw (Exception) e.getCause(); // as a run against that server would fail
        }
        if (inv.json()) {
            out.println(PlanReport.json(def.name(), params.logicalDate().toString(), r.endpoint(), r.plan()));
        } else {
            String what = "job " + def.name() + " for " + params.logicalDate() + (params.params().isEmpty() ? "" : " [" + params.paramsKey() + "]");
            out.print(PlanReport.text(what + (def.run().reuse() ? "" : " (run.reuse: false)"), r.endpoint(), r.plan()));
        }
        return 0;
    }
}
