package io.vlmbatch.job;

import io.vlmbatch.template.TextTemplate;
import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * What identifies one run of a job besides its name: the logical date (the day the run is "for", as in
 * Airflow, not the day it executes) and the user's --param values. {@code previousLogicalDate} is the
 * logical date of the schedule's previous interval ({{ prev_ds }}); it does not identify the run, and
 * without a schedule (a run from the command line) it is the day before.
 */
public record RunParameters(LocalDate logicalDate, Map<String, String> params, LocalDate previousLogicalDate) {
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
        return new TextTemplate(text, text).render(var -> switch (var) {
            case "ds" -> logicalDate.toString();
            case "ds_nodash" -> logicalDate.format(DateTimeFormatter.BASIC_ISO_DATE);
            case "prev_ds" -> previousLogicalDate.toString();
            case "job" -> jobName;
            default -> var.startsWith("params.") ? params.get(var.substring("params.".length())) : null;
        }, var -> "unknown variable {{ " + var + " }} in \"" + text
                + "\" (known: ds, ds_nodash, prev_ds, job, params.<name> given with --param)");
    }
}
