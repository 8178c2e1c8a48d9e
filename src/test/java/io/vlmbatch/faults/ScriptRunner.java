package io.vlmbatch.faults;

import io.vlmbatch.testsupport.RepoPaths;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** Runs one of the bench/faults scripts (short settings) against the jar of this build, and reads its JSON. */
final class ScriptRunner {
    private ScriptRunner() {}

    static JsonNode run(String script, Path out, long timeoutMinutes, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(RepoPaths.python().toString(), RepoPaths.root().resolve("bench/faults/" + script).toString()));
        cmd.addAll(List.of(args));
        cmd.addAll(List.of("--build-dir", RepoPaths.buildDir().toString(), "--out", out.toString()));
        Path log = Files.createTempFile("faults-script", ".log");
        Process p = new ProcessBuilder(cmd).directory(RepoPaths.root().toFile()).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        if (!p.waitFor(timeoutMinutes, TimeUnit.MINUTES)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly().waitFor();
            throw new AssertionError(script + " did not finish in " + timeoutMinutes + " minutes:\n" + Files.readString(log));
        }
        String output = Files.readString(log);
        System.out.print(output);
        if (p.exitValue() != 0) throw new AssertionError(script + " exited with " + p.exitValue() + ":\n" + output);
        return JsonMapper.builder().build().readTree(Files.readString(out));
    }

    static Path results() throws Exception {
        Path dir = Path.of(System.getProperty("faults.results", RepoPaths.buildDir().resolve("faults-results").toString()));
        Files.createDirectories(dir);
        return dir;
    }
}
