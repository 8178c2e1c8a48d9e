package io.vlmbatch.batch;

import io.vlmbatch.source.ImageSource;
import io.vlmbatch.source.SourceItem;
import io.vlmbatch.ledger.Attempts;
import io.vlmbatch.store.RunStore;
import io.vlmbatch.store.WorkItemStore;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.batch.core.step.StepContribution;
import org.springframework.batch.core.scope.context.ChunkContext;
import org.springframework.batch.core.step.tasklet.Tasklet;
import org.springframework.batch.infrastructure.repeat.RepeatStatus;

/**
 * Lists the source once per run into vlm_work_item. It runs in one transaction, so the list is either
 * complete and marked discovered, or not there at all; once discovered it is frozen: files added to the
 * folder later belong to another run.
 */
public class DiscoverTasklet implements Tasklet {
    private static final Logger log = LoggerFactory.getLogger(DiscoverTasklet.class);
    private static final int BATCH = 1000;

    private final Supplier<ImageSource> source;
    private final RunStore runs;
    private final WorkItemStore items;

    public DiscoverTasklet(Supplier<ImageSource> source, RunStore runs, WorkItemStore items) {
        this.source = source;
        this.runs = runs;
        this.items = items;
    }

    @Override
    public RepeatStatus execute(StepContribution contribution, ChunkContext chunkContext) throws Exception {
        long runId = Attempts.workRunId(chunkContext.getStepContext().getStepExecution().getJobExecution());
        if (runs.discovered(runId)) {
            log.info("work items of run {} already discovered", runId);
            return RepeatStatus.FINISHED;
        }
        List<SourceItem> batch = new ArrayList<>(BATCH);
        long[] count = {0};
        ImageSource listing = source.get();
        listing.discover(item -> {
            batch.add(item);
            if (batch.size() == BATCH) {
                items.insert(runId, batch);
                count[0] += batch.size();
                batch.clear();
            }
        });
        items.insert(runId, batch);
        count[0] += batch.size();
        runs.markDiscovered(runId, listing.membersSkipped());
        contribution.incrementWriteCount(count[0]);
        log.info("discovered {} images", count[0]);
        return RepeatStatus.FINISHED;
    }
}
