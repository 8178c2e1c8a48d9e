package io.vlmbatch;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The main code's dependency graph, read from the sources (imports and fully qualified names, comments
 * left out): no package cycles, no import cycles between files (classes of one package see each other
 * without imports, so those are files of different packages), and the shells (schedule, web) and the
 * run lifecycle never reach into the command line's package. Fails with the cycle it found.
 */
class PackageDependenciesTest {
    private static final Path MAIN = Path.of("src/main/java");
    private static final Pattern PACKAGE = Pattern.compile("^package ([\\w.]+);", Pattern.MULTILINE);
    private static final Pattern REFERENCE = Pattern.compile("\\b(io\\.vlmbatch(?:\\.[a-z]\\w*)*)\\.([A-Z]\\w*)");
    private static final Pattern COMMENTS = Pattern.compile("//[^\\n]*|/\\*.*?\\*/", Pattern.DOTALL);

    /** One main source file: its package, its class and the io.vlmbatch classes it names (package.Class). */
    private record Source(String pkg, String cls, Set<String> references) {}

    private static List<Source> sources() throws IOException {
        try (Stream<Path> files = Files.walk(MAIN)) {
            return files.filter(p -> p.toString().endsWith(".java")).map(PackageDependenciesTest::read).toList();
        }
    }

    private static Source read(Path file) {
        try {
            String text = COMMENTS.matcher(Files.readString(file)).replaceAll(" ");
            Matcher pm = PACKAGE.matcher(text);
            if (!pm.find()) throw new IllegalStateException(file + " has no package");
            String cls = file.getFileName().toString().replace(".java", "");
            Set<String> refs = new TreeSet<>();
            Matcher m = REFERENCE.matcher(text.substring(pm.end()));
            while (m.find()) refs.add(m.group(1) + "." + m.group(2));
            return new Source(pm.group(1), pm.group(1) + "." + cls, refs);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Map<String, Set<String>> packageGraph(List<Source> sources) {
        Map<String, Set<String>> graph = new TreeMap<>();
        for (Source s : sources) {
            Set<String> to = graph.computeIfAbsent(s.pkg(), k -> new TreeSet<>());
            for (String r : s.references()) {
                String pkg = r.substring(0, r.lastIndexOf('.'));
                if (!pkg.equals(s.pkg())) to.add(pkg);
            }
        }
        return graph;
    }

    private static Map<String, Set<String>> fileGraph(List<Source> sources) {
        Set<String> classes = new TreeSet<>();
        sources.forEach(s -> classes.add(s.cls()));
        Map<String, Set<String>> graph = new TreeMap<>();
        for (Source s : sources) {
            Set<String> to = graph.computeIfAbsent(s.cls(), k -> new TreeSet<>());
            s.references().stream().filter(classes::contains).filter(r -> !r.equals(s.cls())).forEach(to::add);
        }
        return graph;
    }

    /** A cycle of the graph as "a -> b -> a", or null. Depth-first search with the path on a stack. */
    static String cycle(Map<String, Set<String>> graph) {
        Map<String, Integer> state = new TreeMap<>(); // 1: on the path, 2: done
        for (String start : graph.keySet()) {
            Deque<String> path = new ArrayDeque<>();
            String found = visit(start, graph, state, path);
            if (found != null) return found;
        }
        return null;
    }

    private static String visit(String node, Map<String, Set<String>> graph, Map<String, Integer> state, Deque<String> path) {
        Integer s = state.get(node);
        if (s != null && s == 2) return null;
        if (s != null) {
            List<String> loop = new ArrayList<>(path).reversed();
            return String.join(" -> ", loop.subList(loop.indexOf(node), loop.size())) + " -> " + node;
        }
        state.put(node, 1);
        path.push(node);
        for (String next : graph.getOrDefault(node, Set.of())) {
            String found = visit(next, graph, state, path);
            if (found != null) return found;
        }
        path.pop();
        state.put(node, 2);
        return null;
    }

    @Test
    void noPackageCycles() throws IOException {
        Map<String, Set<String>> graph = packageGraph(sources());
        assertThat(graph).as("packages found").containsKeys("io.vlmbatch.run", "io.vlmbatch.cli", "io.vlmbatch.web");
        assertThat(cycle(graph)).as("package cycle in " + graph).isNull();
    }

    @Test
    void noFileCycles() throws IOException {
        assertThat(cycle(fileGraph(sources()))).as("file cycle").isNull();
    }

    @Test
    void theShellsDoNotUseTheCommandLine() throws IOException {
        Map<String, Set<String>> graph = packageGraph(sources());
        for (String shell : List.of("io.vlmbatch.schedule", "io.vlmbatch.web", "io.vlmbatch.run")) {
            assertThat(graph.getOrDefault(shell, Set.of())).as(shell + " imports").doesNotContain("io.vlmbatch.cli");
        }
    }

    @Test
    void theCycleFinderFindsCycles() {
        assertThat(cycle(new TreeMap<>(Map.of("a", Set.of("b"), "b", Set.of("c"), "c", Set.of("a"))))).isEqualTo("a -> b -> c -> a");
        assertThat(cycle(Map.of("a", Set.of("b", "c"), "b", Set.of("c"), "c", Set.of()))).isNull();
    }
}
