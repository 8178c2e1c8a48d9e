package io.vlmbatch.run;

import io.vlmbatch.store.RunStore.Owner;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;

/**
 * The one rule for "is the process that owns a run still alive?", used by every path that starts,
 * restarts or recovers a run. On this host the owner's pid answers it exactly. For another host we
 * cannot see its processes, so its heartbeat decides: fresh means alive, older than the stale timeout
 * means dead (the owner beats every few seconds, so a timeout of several beats tolerates a slow one).
 */
public final class RunOwnership {
    private static final String LOCAL_HOST = lookUpHostName();

    private final String host;
    private final Duration staleAfter;

    public RunOwnership(Duration staleAfter) {
        this(LOCAL_HOST, staleAfter);
    }

    /** @param host the name this process records as its host (tests pose as other hosts with it) */
    public RunOwnership(String host, Duration staleAfter) {
        if (staleAfter.isNegative() || staleAfter.isZero()) throw new IllegalArgumentException("stale timeout must be positive");
        this.host = host;
        this.staleAfter = staleAfter;
    }

    public String host() { return host; }

    public long pid() { return ProcessHandle.current().pid(); }

    public Duration staleAfter() { return staleAfter; }

    public boolean alive(Owner owner) {
        if (owner.host().equals(host)) {
            return ProcessHandle.of(owner.pid()).map(ProcessHandle::isAlive).orElse(false);
        }
        return owner.heartbeatAge() != null && owner.heartbeatAge().compareTo(staleAfter) < 0;
    }

    public boolean isSelf(Owner owner) {
        return owner.host().equals(host) && owner.pid() == pid();
    }

    /** "pid 42 on host-b, last heartbeat 3 s ago" */
    public static String describe(Owner owner) {
        String beat = owner.heartbeatAge() == null ? "no heartbeat recorded"
                : "last heartbeat " + owner.heartbeatAge().toSeconds() + " s ago";
        return "pid " + owner.pid() + " on " + owner.host() + ", " + beat;
    }

    /** This machine's name as recorded in run and scheduler ownership. */
    public static String localHost() {
        return LOCAL_HOST;
    }

    private static String lookUpHostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            return "localhost";
        }
    }
}
