package io.vlmbatch.cli;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;

/**
 * The one status line at the bottom of a terminal, shared with everything else that prints there. The
 * status line is drawn without a newline so that it can be redrawn in place; anything else written to
 * System.out or System.err (log lines included: logback's console appender writes through System.out)
 * first erases it and, once its own line is complete, gets it drawn again below, so a log line never
 * lands on the end of the status line.
 */
final class TerminalLine {
    private static final String ERASE = "\r\033[K";
    private final PrintStream terminal;
    private String status;          // what is drawn now, or null
    private boolean midLine;        // someone else's line is unfinished: drawing now would split it
    private PrintStream savedOut;
    private PrintStream savedErr;

    TerminalLine(PrintStream terminal) {
        this.terminal = terminal;
    }

    /** Routes System.out and System.err through this line until {@link #release()}. */
    synchronized void install() {
        savedOut = System.out;
        savedErr = System.err;
        System.setOut(guarded(savedOut));
        System.setErr(guarded(savedErr));
    }

    synchronized void release() {
        if (savedOut != null) {
            System.setOut(savedOut);
            System.setErr(savedErr);
            savedOut = null;
        }
    }

    /** Draws (or redraws) the status line; it is kept for redrawing after other output. */
    synchronized void show(String line) {
        status = line;
        if (midLine) return;
        terminal.print(ERASE + line);
        terminal.flush();
    }

    /** Ends the status line with a newline so that what follows starts on a line of its own. */
    synchronized void finish() {
        if (status != null && !midLine) terminal.println();
        terminal.flush();
        status = null;
    }

    private PrintStream guarded(PrintStream target) {
        TerminalLine line = this;
        return new PrintStream(new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) {
                if (len == 0) return;
                synchronized (line) {
                    if (status != null && !midLine) {
                        terminal.print(ERASE);
                        terminal.flush();
                    }
                    target.write(b, off, len);
                    target.flush();
                    midLine = b[off + len - 1] != '\n';
                    if (!midLine && status != null) {
                        terminal.print(status);
                        terminal.flush();
                    }
                }
            }

            @Override
            public void flush() {
                target.flush();
            }
        }, true);
    }
}
