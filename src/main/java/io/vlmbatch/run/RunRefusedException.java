package io.vlmbatch.run;

/** A run that must not be started or resumed now (another process got to it first). */
public class RunRefusedException extends RuntimeException {
    public RunRefusedException(String message) {
        super(message);
    }
}
