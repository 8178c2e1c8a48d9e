package io.vlmbatch.source;

import java.io.IOException;
import java.util.function.Consumer;

/** Lists a job's images. Two calls over unchanged inputs give the same items in the same order. */
public interface ImageSource {

    void discover(Consumer<SourceItem> sink) throws IOException;
}
