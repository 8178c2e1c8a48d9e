package io.vlmbatch.source;

import io.vlmbatch.archive.ExpandStats;
import io.vlmbatch.archive.Expander;
import io.vlmbatch.archive.ExpandSpec;
import java.io.IOException;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A source whose PDFs, multi-page TIFFs and ZIP/TAR archives become one item per page or member, by
 * structure only (see {@link Expander}). Plain images pass through without being opened. A listed file
 * that cannot be read at all becomes a failed item with the reason; the listing goes on.
 */
final class ExpandingSource implements ImageSource {

    private static final Logger log = LoggerFactory.getLogger(ExpandingSource.class);

    private final ImageSource files;
    private final Expander expander;
    private final ByteSources opener;
    private final ExpandStats stats = new ExpandStats();

    ExpandingSource(ImageSource files, ExpandSpec spec, ByteSources opener) {
        this.files = files;
        this.expander = new Expander(spec);
        this.opener = opener;
    }

    @Override
    public void discover(Consumer<SourceItem> sink) throws IOException {
        try {
            files.discover(file -> {
                try {
                    stats.add(expander.expand(file.itemKey(), file.uri(), opener.open(file.uri()), found -> sink.accept(
                            new SourceItem(found.key(), file.uri(), file.metadata(), found.lineage().member(),
                                    found.lineage().page(), found.failure()))));
                } catch (IOException e) {
                    sink.accept(new SourceItem(file.itemKey(), file.uri(), file.metadata(), "", null,
                            "cannot read: " + e.getMessage()));
                }
            });
        } finally {
            opener.close();
        }
        log.info("expanded: {}", stats);
    }

    /** What expansion found and skipped (members of unknown type...), for the run summary. */
    ExpandStats stats() {
        return stats;
    }

    @Override
    public long membersSkipped() {
        return stats.skippedUnknown();
    }
}
