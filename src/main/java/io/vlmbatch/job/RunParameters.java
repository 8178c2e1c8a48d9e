package io.vlmbatch.job;

import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * What identifies one run of a job besides its name: the logical date (the day the run is "for", as in
 * Airflow, not the day it executes) and the user's --param values. {@code previousLogicalDate} is the
 * logical date of the schedule's previous interval ({{ prev_ds }}); it does not identify the run, and
 * without a schedule (a run from the command line) it is the day before.
 */
public record RunParameters(LocalDate logicalDate, Map<String, String> params, LocalDate previousLogicalDate) {
    private static final Pattern VAR = Pattern.compile("\\{\\{\\s*([A-Za-z_][A-Za-z0-9_.]*)\\s*}}");

    public RunParameters {
        params = Map.copyOf(new TreeMap<>(params));
        if (previousLogicalDate == null) previousLogicalDate = logicalDate.minusDays(1);
    }

    public RunParameters(LocalDate logicalDate, Map<String, String> params) {
        this(logicalDate, params, null);
    }

    /** Canonical text of the params, stable across processes: k=v joined by '&' in key order. */
    public String paramsKey() {
        return new TreeMap<>(params).entrySet().stream()
                .map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining("&"));
    }

    /** Renders {{ ds }}, {{ ds_nodash }}, {{ prev_ds }}, {{ job }} and {{ params.k }} in a path or URI. */
    public String render(String text, String jobName) {
        if (text == null) return null;
        Matcher m = VAR.matcher(text);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String var = m.group(1);
            String value = switch (var) {
                case "ds" -> logicalDate.toString();
                case "ds_nodash" -> logicalDate.format(DateTimeFormatter.BASIC_ISO_DATE);
                case "prev_ds" -> previousLogicalDate.toString();
                case "job" -> jobName;
                default -> var.startsWith("params.") ? params.get(var.substring("params.".length())) : null;
            };
            if (value == null) {
                throw new IllegalArgumentException("unknown variable {{ " + var + " }} in \"" + text
                        + "\" (known: ds, ds_nodash, prev_ds, job, params.<name> given with --param)");
            }
            m.appendReplacement(out, Matcher.quoteReplacement(value));
        }
        m.appendTail(out);
        return out.toString();
    }
}
