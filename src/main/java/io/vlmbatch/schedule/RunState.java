package io.vlmbatch.schedule;

/**
 * One word for where a run stands, from what the scheduler knows of it (its vlm_schedule_run state, null
 * for a run started from the command line) and Batch's status of its newest execution (null: not started).
 */
public final class RunState {
    private RunState() {}

    public static String of(String scheduleState, String batchStatus) {
        if (scheduleState != null) {
            if (scheduleState.equals("running") && "STOPPING".equals(batchStatus)) return "stopping";
            return scheduleState;
        }
        if (batchStatus == null) return "queued";
        return switch (batchStatus) {
            case "COMPLETED" -> "success";
            case "FAILED", "ABANDONED", "UNKNOWN" -> "failed";
            case "STOPPED" -> "stopped";
            case "STOPPING" -> "stopping";
            default -> "running";
        };
    }
}
