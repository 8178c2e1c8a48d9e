package io.vlmbatch.schedule;

/** How one launch of a run ended. error: the reason when it did not succeed. */
public record RunOutcome(State state, String error) {
    public enum State { SUCCESS, FAILED, STOPPED }

    public static RunOutcome success() { return new RunOutcome(State.SUCCESS, null); }

    public static RunOutcome failed(String error) { return new RunOutcome(State.FAILED, error); }

    public static RunOutcome stopped() { return new RunOutcome(State.STOPPED, "stopped by request"); }
}
