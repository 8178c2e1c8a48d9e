package io.vlmbatch.schedule;

import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.JobFileException;
import io.vlmbatch.job.JobFileLoader;
import io.vlmbatch.job.ScheduleSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The job files `serve` knows: every *.yaml / *.yml in one folder, loaded once at start. A file that
 * does not load is kept with its error (shown by the API and UI) instead of stopping the server.
 */
public final class JobCatalog {
    private static final Logger log = LoggerFactory.getLogger(JobCatalog.class);

    /** A job file: definition and schedule when it loaded, else error. */
    public record Entry(Path file, String name, JobDefinition definition, ScheduleSpec schedule, String error) {
        public boolean ok() { return error == null; }
    }

    private final Path folder;
    private final List<Entry> entries;

    private JobCatalog(Path folder, List<Entry> entries) {
        this.folder = folder;
        this.entries = List.copyOf(entries);
    }

    public static JobCatalog load(Path folder) {
        if (!Files.isDirectory(folder)) throw new IllegalArgumentException("the jobs folder " + folder + " does not exist");
        List<Path> files;
        try (Stream<Path> s = Files.list(folder)) {
            files = s.filter(p -> p.toString().endsWith(".yaml") || p.toString().endsWith(".yml")).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<Entry> entries = new ArrayList<>();
        Set<String> names = new HashSet<>();
        for (Path f : files) {
            String fallback = f.getFileName().toString().replaceFirst("\\.ya?ml$", "");
            try {
                JobDefinition def = JobFileLoader.load(f);
                if (!names.add(def.name())) {
                    entries.add(new Entry(f, def.name(), null, null, f + ": job name \"" + def.name() + "\" is used by another file too"));
                    continue;
                }
                entries.add(new Entry(f, def.name(), def, def.schedule(), null));
            } catch (JobFileException e) {
                log.error("job file not loaded: {}", e.getMessage());
                entries.add(new Entry(f, fallback, null, null, e.getMessage()));
            }
        }
        log.info("{} job files in {} ({} scheduled)", entries.size(), folder,
                entries.stream().filter(e -> e.ok() && e.schedule().scheduled()).count());
        return new JobCatalog(folder, entries);
    }

    /** A catalog of already-loaded jobs (tests, embedding). */
    public static JobCatalog of(Path folder, List<Entry> entries) {
        return new JobCatalog(folder, entries);
    }

    public Path folder() { return folder; }

    public List<Entry> entries() { return entries; }

    public List<Entry> usable() { return entries.stream().filter(Entry::ok).toList(); }

    public Optional<Entry> get(String name) {
        return entries.stream().filter(e -> e.name().equals(name)).findFirst();
    }
}
