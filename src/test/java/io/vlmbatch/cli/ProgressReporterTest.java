package io.vlmbatch.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.store.ItemCounts;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

class ProgressReporterTest {

    /** What a terminal shows for the bytes: \r goes to column 0, ESC[K erases to the end of the line. */
    static List<String> screen(String bytes) {
        List<String> lines = new ArrayList<>();
        StringBuilder line = new StringBuilder();
        int col = 0;
        for (int i = 0; i < bytes.length(); i++) {
            char c = bytes.charAt(i);
            if (c == '\r') {
                col = 0;
            } else if (c == '\033' && bytes.startsWith("\033[K", i)) {
                line.setLength(col);
                i += 2;
            } else if (c == '\n') {
                lines.add(line.toString());
                line.setLength(0);
                col = 0;
            } else {
                if (col < line.length()) line.setCharAt(col, c);
                else line.append(c);
                col++;
            }
        }
        if (!line.isEmpty()) lines.add(line.toString());
        return lines;
    }

    @Test
    void theFirstLineWaitsForARealIntervalAndItsRateIsMeasuredFromTheFirstCount() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        AtomicLong now = new AtomicLong(5_000_000_000L);
        // a restarted run: 40 of 100 items were finished by the run it resumes
        long[] finished = {40};
        ProgressReporter p = new ProgressReporter(() -> new ItemCounts(finished[0], 0, 100 - finished[0]), false, out,
                Duration.ofSeconds(10), now::get);

        p.tick();                       // the baseline: no interval yet, so no rate and no line
        p.tick();                       // the same instant again: still nothing (a zero interval)
        now.addAndGet(4_000_000_000L);
        finished[0] = 44;
        p.tick();                       // before a full interval
        assertThat(bytes.toString(StandardCharsets.UTF_8)).isEmpty();

        now.addAndGet(6_000_000_000L);
        finished[0] = 50;
        p.tick();
        assertThat(bytes.toString(StandardCharsets.UTF_8).strip())
                .isEqualTo("progress: 50/100 images: 50 done, 0 failed, 50 pending, 1.00 images/s ETA 0m50s");
    }

    @Test
    void logLinesNeverLandOnTheStatusLine() throws Exception {
        ByteArrayOutputStream terminal = new ByteArrayOutputStream();
        PrintStream tty = new PrintStream(terminal, true, StandardCharsets.UTF_8);
        PrintStream realOut = System.out;
        PrintStream realErr = System.err;
        System.setOut(tty);
        System.setErr(tty);
        AtomicLong done = new AtomicLong();
        try (ProgressReporter p = new ProgressReporter(() -> new ItemCounts(done.incrementAndGet(), 0, 1_000_000),
                true, tty, Duration.ofMillis(2), System::nanoTime).start()) {
            for (int i = 0; i < 200; i++) {
                if (i % 2 == 0) System.out.println("plain line " + i);
                else LoggerFactory.getLogger(ProgressReporterTest.class).warn("logged line {}", i);
                System.err.print("partial ");      // a line written in two pieces stays one line
                Thread.sleep(1);
                System.err.println("line " + i);
            }
        } finally {
            System.setOut(realOut);
            System.setErr(realErr);
        }
        List<String> lines = screen(terminal.toString(StandardCharsets.UTF_8));
        String progress = "\\d+/\\d+ images: \\d+ done, \\d+ failed, \\d+ pending, [0-9.]+ images/s( ETA \\S+)?";
        assertThat(lines).as("the status line was drawn").anyMatch(l -> l.matches(progress));
        assertThat(lines.stream().filter(l -> l.contains("plain line"))).hasSize(100).allMatch(l -> l.matches("plain line \\d+"));
        assertThat(lines.stream().filter(l -> l.contains("logged line"))).hasSize(100).allMatch(l -> l.matches(".*logged line \\d+"));
        assertThat(lines.stream().filter(l -> l.contains("partial"))).hasSize(200).allMatch(l -> l.matches("partial line \\d+"));
        assertThat(lines).allMatch(l -> l.matches(progress) || !l.contains("images/s"), "no line mixes the status with other output");
        assertThat(System.out).isSameAs(realOut);
    }
}
