package io.vlmbatch.source;

import java.io.IOException;
import java.util.function.Consumer;

/** Lists a job's images. Two calls over unchanged inputs give the same items in the same order. */
public interface ImageSource {

    void discover(Consumer<SourceItem> sink) throws IOException;

    /** Archive members that {@link #discover} left out as neither an image nor a container (no work item). */
    default long membersSkipped() {
        return 0;
    }
}
