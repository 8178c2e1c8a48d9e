package io.vlmbatch.job;

import java.io.StringReader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.error.YAMLException;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;
import org.yaml.snakeyaml.nodes.SequenceNode;
import org.yaml.snakeyaml.nodes.Tag;

/**
 * `--set key=value` on the job file's node tree, before it is validated: the value then meets exactly the
 * rules (and error messages) of the file itself. Keys are dotted paths of mapping keys; in {@code tasks},
 * a segment names a task ({@code tasks.caption.max_tokens=512}). The value is read as YAML
 * ({@code [a, b]} is a list), with the same loader limits as the file.
 */
final class JobOverrides {
    private static final Pattern SEGMENT = Pattern.compile("[A-Za-z_][A-Za-z0-9_]{0,62}");
    private static final int MAX_VALUE_CHARS = 10_000;

    private JobOverrides() {}

    /** @return the value nodes put in, so that errors about them can say they came from --set */
    static java.util.Set<Node> apply(Path file, Node root, List<String> sets) {
        java.util.Set<Node> put = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        for (String set : sets) {
            int eq = set.indexOf('=');
            if (eq <= 0) throw error(file, set, "must be key=value");
            String key = set.substring(0, eq);
            String[] path = key.split("\\.", -1);
            for (String seg : path) {
                if (!SEGMENT.matcher(seg).matches()) throw error(file, key, "each part of the key must be a plain name, got \"" + seg + "\"");
            }
            if (!(root instanceof MappingNode)) throw error(file, key, "the job file is not a mapping");
            Node value = value(file, key, set.substring(eq + 1));
            markAll(value, put);
            Node at = root;
            for (int i = 0; i < path.length; i++) {
                boolean last = i == path.length - 1;
                if (at instanceof SequenceNode seq && i > 0 && path[i - 1].equals("tasks")) {
                    at = task(file, key, seq, path[i]);
                    if (last) throw error(file, key, "names a whole task; set one of its fields");
                    continue;
                }
                if (!(at instanceof MappingNode map)) throw error(file, key, "\"" + path[i - 1] + "\" is not a mapping");
                NodeTuple found = null;
                for (NodeTuple t : map.getValue()) {
                    if (t.getKeyNode() instanceof ScalarNode k && k.getValue().equals(path[i])) found = t;
                }
                if (last) {
                    if (found != null) map.getValue().remove(found);
                    map.getValue().add(new NodeTuple(scalar(path[i]), value));
                } else if (found != null) {
                    at = found.getValueNode();
                } else {
                    MappingNode created = new MappingNode(Tag.MAP, new ArrayList<>(), org.yaml.snakeyaml.DumperOptions.FlowStyle.BLOCK);
                    map.getValue().add(new NodeTuple(scalar(path[i]), created));
                    at = created;
                }
            }
        }
        return put;
    }

    private static void markAll(Node n, java.util.Set<Node> put) {
        put.add(n);
        if (n instanceof SequenceNode seq) seq.getValue().forEach(c -> markAll(c, put));
        if (n instanceof MappingNode m) m.getValue().forEach(t -> {
            markAll(t.getKeyNode(), put);
            markAll(t.getValueNode(), put);
        });
    }

    private static Node task(Path file, String key, SequenceNode tasks, String name) {
        for (Node n : tasks.getValue()) {
            if (n instanceof MappingNode m) {
                for (NodeTuple t : m.getValue()) {
                    if (t.getKeyNode() instanceof ScalarNode k && k.getValue().equals("name")
                            && t.getValueNode() instanceof ScalarNode v && v.getValue().equals(name)) {
                        return m;
                    }
                }
            }
        }
        throw error(file, key, "the job has no task named \"" + name + "\"");
    }

    private static Node value(Path file, String key, String text) {
        if (text.length() > MAX_VALUE_CHARS) throw error(file, key, "value longer than " + MAX_VALUE_CHARS + " characters");
        Node n;
        try {
            n = new Yaml(new LoaderOptions()).compose(new StringReader(text));
        } catch (YAMLException e) {
            throw error(file, key, "value is not valid YAML: " + e.getMessage().lines().findFirst().orElse(""));
        }
        return n == null ? new ScalarNode(Tag.NULL, "", null, null, org.yaml.snakeyaml.DumperOptions.ScalarStyle.PLAIN) : n;
    }

    private static ScalarNode scalar(String s) {
        return new ScalarNode(Tag.STR, s, null, null, org.yaml.snakeyaml.DumperOptions.ScalarStyle.PLAIN);
    }

    private static JobFileException error(Path file, String key, String problem) {
        return new JobFileException(file, 0, "--set " + key, problem);
    }
}
