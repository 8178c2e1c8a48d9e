package io.vlmbatch.testsupport;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs the packaged launcher (./vlm-batch) as a user would, with its own data folder (embedded
 * PostgreSQL) so tests don't share state with each other or with the user.
 */
public final class Launcher {
    public record Result(int exitCode, String output) {}

    private final Path dataDir;
    private final Path workDir;
    private final String javaOpts;

    public Launcher(Path dataDir, Path workDir) {
        this(dataDir, workDir, null);
    }

    private Launcher(Path dataDir, Path workDir, String javaOpts) {
        this.dataDir = dataDir;
        this.workDir = workDir;
        this.javaOpts = javaOpts;
    }

    /** The same launcher with JVM options (VLM_JAVA_OPTS), e.g. -Dvlm.run.host=... to pose as another host. */
    public Launcher withJavaOpts(String opts) {
        return new Launcher(dataDir, workDir, opts);
    }

    public Path dataDir() { return dataDir; }

    public ProcessBuilder builder(String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(RepoPaths.root().resolve("vlm-batch").toString());
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(workDir.toFile()).redirectErrorStream(true);
        pb.environment().put("VLM_DATA_DIR", dataDir.toString());
        pb.environment().put("VLM_BUILD_DIR", RepoPaths.buildDir().toString());
        pb.environment().put("VLM_NO_BUILD", "1");
        pb.environment().remove("SPRING_DATASOURCE_URL");
        if (javaOpts != null) pb.environment().put("VLM_JAVA_OPTS", javaOpts);
        return pb;
    }

    /** Starts the launcher with its output going to a file (read it with output(file)). */
    public Process start(Path outputFile, String... args) throws IOException {
        return builder(args).redirectOutput(outputFile.toFile()).start();
    }

    public Result run(long timeoutSeconds, String... args) throws Exception {
        Path out = Files.createTempFile("vlm-launcher", ".log");
        Process p = start(out, args);
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
            throw new AssertionError("vlm-batch " + String.join(" ", args) + " did not finish in " + timeoutSeconds
                    + " s:\n" + Files.readString(out));
        }
        return new Result(p.exitValue(), Files.readString(out));
    }
}
