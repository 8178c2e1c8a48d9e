package io.vlmbatch.archive;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Runs an expansion and keeps what it produced, for assertions. */
record Expansions(List<ExpandedItem> items, ExpandStats stats) {

    static Expansions of(ExpandSpec spec, Path root, String relative) throws IOException {
        List<ExpandedItem> items = new ArrayList<>();
        Path file = root.resolve(relative);
        ExpandStats stats = new Expander(spec).expand(relative, file.toUri().toString(), new LocalFileSource(file), items::add);
        return new Expansions(items, stats);
    }

    static Expansions of(Path root, String relative) throws IOException {
        return of(ExpandSpec.defaults(), root, relative);
    }

    List<String> keys() {
        return items.stream().map(ExpandedItem::key).toList();
    }

    List<ExpandedItem> failures() {
        return items.stream().filter(ExpandedItem::failed).toList();
    }

    ExpandedItem item(String key) {
        return items.stream().filter(i -> i.key().equals(key)).findFirst()
                .orElseThrow(() -> new AssertionError("no item " + key + " in " + keys()));
    }
}
