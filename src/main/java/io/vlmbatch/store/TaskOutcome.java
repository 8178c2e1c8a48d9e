package io.vlmbatch.store;

import io.vlmbatch.inference.ChatResult;

/** The stored result of one task on one image. */
public record TaskOutcome(String task, ChatResult result) {}
