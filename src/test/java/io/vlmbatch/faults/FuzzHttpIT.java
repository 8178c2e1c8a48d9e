package io.vlmbatch.faults;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

/**
 * bench/faults/fuzz_http.py, short: a seeded sample of the hostile requests plus a few random ones to
 * both services. No 5xx (bar Tomcat's 501 for CONNECT), both stay up and keep answering valid requests.
 */
class FuzzHttpIT {

    @Test
    void bothServicesAnswerHostileRequestsWithoutA5xxAndStayUp() throws Exception {
        JsonNode r = ScriptRunner.run("fuzz_http.py", ScriptRunner.results().resolve("faults_fuzz_ci.json"), 15,
                "--fixed-sample", "150", "--random", "30", "--check-every", "60", "--timeout", "40");
        List<String> fives = new ArrayList<>();
        for (String service : List.of("vlmserve", "app")) {
            JsonNode s = r.path("services").path(service);
            assertThat(s.path("cases").asInt()).as(service).isGreaterThanOrEqualTo(150);
            assertThat(s.path("alive_at_end").asBoolean()).as(service + " alive").isTrue();
            String[] valid = s.path("valid_requests_answered").asString().split("/");
            assertThat(valid[0]).as(service + " answered every valid request").isEqualTo(valid[1]);
            s.path("5xx").forEach(f -> fives.add(service + ": " + f.path("case").asString() + " -> " + f.path("status").asString()));
        }
        assertThat(fives).isEmpty();
    }
}
