package io.vlmbatch.testsupport;

import io.vlmbatch.VlmBatchApplication;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The checkout under test and the build folder Maven is using (target/, or -Dbuild.dir=...). */
public final class RepoPaths {
    private RepoPaths() {}

    public static Path root() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isExecutable(p.resolve("vlm-batch"))) p = p.getParent();
        if (p == null) throw new IllegalStateException("not inside the vlm-batch checkout");
        return p;
    }

    /** The parent of target/classes (or of the jar) that holds the main classes. */
    public static Path buildDir() {
        try {
            Path classes = Path.of(VlmBatchApplication.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            return classes.getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    public static Path python() {
        Path python = root().resolve(".venv/bin/python");
        if (!Files.isExecutable(python)) {
            throw new IllegalStateException(python + " is missing: run scripts/setup-python (./run-tests does) before mvn verify");
        }
        return python;
    }
}
