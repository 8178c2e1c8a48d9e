package io.vlmbatch.run;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vlmbatch.store.RunStore.Owner;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The liveness rule: this host's owners by their pid, other hosts' by the age of their heartbeat. */
class RunOwnershipTest {
    private final RunOwnership here = new RunOwnership("host-a", Duration.ofSeconds(30));
    private final long myPid = ProcessHandle.current().pid();

    @Test
    void sameHostOwnerIsAliveExactlyWhileItsProcessIs() throws Exception {
        assertThat(here.alive(new Owner("host-a", myPid, Duration.ofHours(1)))).as("alive pid, stale beat").isTrue();
        Process p = new ProcessBuilder("true").start();
        p.waitFor();
        assertThat(here.alive(new Owner("host-a", p.pid(), Duration.ZERO))).as("dead pid, fresh beat").isFalse();
    }

    @Test
    void otherHostOwnerIsAliveWhileItsHeartbeatIsFresh() {
        assertThat(here.alive(new Owner("host-b", 1, Duration.ofSeconds(29)))).isTrue();
        assertThat(here.alive(new Owner("host-b", 1, Duration.ofSeconds(30)))).isFalse();
        assertThat(here.alive(new Owner("host-b", myPid, Duration.ofMinutes(5)))).as("our pid number means nothing there").isFalse();
        assertThat(here.alive(new Owner("host-b", 1, null))).as("never beat").isFalse();
    }

    @Test
    void describesTheOwnerForTheOperator() {
        assertThat(RunOwnership.describe(new Owner("host-b", 42, Duration.ofMillis(3_900))))
                .isEqualTo("pid 42 on host-b, last heartbeat 3 s ago");
    }

    @Test
    void staleTimeoutMustBePositive() {
        assertThatThrownBy(() -> new RunOwnership("h", Duration.ZERO)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new RunOwnership("h", Duration.ofSeconds(-1))).isInstanceOf(IllegalArgumentException.class);
    }
}
