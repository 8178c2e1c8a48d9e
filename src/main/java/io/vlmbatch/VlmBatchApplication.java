package io.vlmbatch;

import io.vlmbatch.cli.Main;
import io.vlmbatch.config.CoreConfig;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.context.annotation.Import;

/**
 * Entry point of `vlm-batch` (the jar's main class); every command goes through the one parser in
 * io.vlmbatch.cli. As a configuration it is the core context (CoreConfig), for tests that start serve's.
 *
 * No auto-configuration on purpose: every bean is declared in config/, so what runs is what is read.
 */
@SpringBootConfiguration(proxyBeanMethods = false)
@Import(CoreConfig.class)
public class VlmBatchApplication {

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** The process exit code of one command line: 0 success, 1 failure, 2 bad command line or job file. */
    public static int run(String[] args) {
        return Main.run(args);
    }
}
