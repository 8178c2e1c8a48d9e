package io.vlmbatch.source;

import java.util.Map;

/** One data row of a manifest: its line number (1-based, as an editor shows it) and its fields. */
record ManifestRow(long line, Map<String, String> fields) {}
