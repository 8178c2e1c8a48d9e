package io.vlmbatch.config;

import java.nio.file.Path;

/**
 * Where things live. home: the vlm-batch checkout (the launcher passes -Dvlm.home; it holds .venv and
 * inference/). data: the user's data folder for the embedded PostgreSQL and logs, which outlives
 * each process: -Dvlm.data.dir or $VLM_DATA_DIR, else $XDG_DATA_HOME/vlm-batch, else ~/.local/share/vlm-batch.
 */
public record AppPaths(Path home, Path data) {
    public static AppPaths fromEnvironment() {
        String home = System.getProperty("vlm.home", System.getenv().getOrDefault("VLM_HOME", "."));
        String explicit = System.getProperty("vlm.data.dir", System.getenv("VLM_DATA_DIR"));
        Path data;
        if (explicit != null && !explicit.isBlank()) {
            data = Path.of(explicit);
        } else {
            String xdg = System.getenv("XDG_DATA_HOME");
            Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg)
                    : Path.of(System.getProperty("user.home"), ".local", "share");
            data = base.resolve("vlm-batch");
        }
        return new AppPaths(Path.of(home).toAbsolutePath().normalize(), data.toAbsolutePath().normalize());
    }

    public Path postgresData() { return data.resolve("pg"); }

    public Path logs() { return data.resolve("logs"); }
}
