package io.vlmbatch.source;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** What a source lists, collected for assertions; shared by the folder, manifest and S3 source tests. */
final class Discovered {
    private Discovered() {}

    static List<SourceItem> items(SourceSpec spec, Path baseDir) throws IOException {
        List<SourceItem> items = new ArrayList<>();
        Sources.open(spec, baseDir).discover(items::add);
        return items;
    }

    static List<String> keys(List<SourceItem> items) {
        return items.stream().map(SourceItem::itemKey).toList();
    }
}
