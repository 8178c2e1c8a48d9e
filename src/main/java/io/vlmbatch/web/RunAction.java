package io.vlmbatch.web;

/**
 * The answer to an action on a run (trigger, restart, stop): the run and where it now stands. trigger is
 * set by trigger (schedule or manual), stopRequested by stop.
 */
public record RunAction(String job, String logicalDate, String state, String trigger, Boolean stopRequested) {}
