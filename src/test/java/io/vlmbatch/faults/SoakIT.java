package io.vlmbatch.faults;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

/**
 * bench/faults/soak.py for one minute (the full soak is 30): steady load on the app and the inference
 * server, memory and latency per window recorded; no request fails and both are up and answering at the end.
 */
class SoakIT {

    @Test
    void aMinuteOfSteadyLoadWithoutErrors() throws Exception {
        JsonNode r = ScriptRunner.run("soak.py", ScriptRunner.results().resolve("faults_soak_ci.json"), 10,
                "--minutes", "1", "--window-s", "20", "--run-images", "6", "--memory-every", "15");
        assertThat(r.path("errors").asInt()).as(r.path("failures").toString()).isZero();
        assertThat(r.path("alive_at_end").path("app").asBoolean()).isTrue();
        assertThat(r.path("alive_at_end").path("server").asBoolean()).isTrue();
        assertThat(r.path("answering_at_end").path("app").asBoolean()).isTrue();
        assertThat(r.path("answering_at_end").path("server").asBoolean()).isTrue();
        assertThat(r.path("windows").size()).isGreaterThanOrEqualTo(2);
        assertThat(r.path("windows").get(0).path("server").path("n").asInt()).isPositive();
        assertThat(r.path("memory").size()).isPositive();
        assertThat(r.path("memory").get(0).path("app_heap_after_gc_mib").isNumber()).as("jcmd read the heap").isTrue();
    }
}
