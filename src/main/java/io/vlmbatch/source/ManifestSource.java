package io.vlmbatch.source;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.regex.Pattern;

import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.GetObjectRequest;
import software.amazon.awssdk.services.s3.model.NoSuchBucketException;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;

/**
 * A CSV (with header) or JSONL manifest, local or on S3, one image per row in file order.
 *
 * <p>Each row names its image in a {@code path} or {@code uri} column: an {@code s3://} URI, a
 * {@code file:} URI, an absolute path, or a path relative to the manifest's own folder (for a
 * manifest on S3, relative to its key's folder in the same bucket). An optional {@code id} column
 * becomes the item key (else the path as written); ids must be unique. Every other column is
 * metadata carried into results and prompts.
 */
final class ManifestSource implements ImageSource {

    static final String ID = "id";
    private static final List<String> LOCATION_COLUMNS = List.of("path", "uri");
    private static final Pattern URI_SCHEME = Pattern.compile("^[A-Za-z][A-Za-z0-9+.-]+:");

    private final String location;
    private final Path baseDir;
    private final Supplier<S3Client> clients;

    ManifestSource(String location, Path baseDir, Supplier<S3Client> clients) {
        this.location = location;
        this.baseDir = baseDir;
        this.clients = clients;
    }

    @Override
    public void discover(Consumer<SourceItem> sink) throws IOException {
        if (S3Uri.isS3(location)) {
            S3Uri manifest = S3Uri.parse(location);
            try (S3Client s3 = clients.get();
                 InputStream in = s3.getObject(GetObjectRequest.builder()
                         .bucket(manifest.bucket()).key(manifest.key()).build())) {
                read(in, manifest.toString(), new RowResolver(null, manifest), sink);
            } catch (NoSuchKeyException | NoSuchBucketException e) {
                throw new SourceException("manifest not found: " + manifest, e);
            } catch (SdkException e) {
                throw new SourceException("cannot read manifest " + manifest + ": " + e.getMessage(), e);
            }
        } else {
            Path file = localPath(location);
            try (InputStream in = Files.newInputStream(file)) {
                Path folder = file.toAbsolutePath().normalize().getParent();
                read(in, file.toString(), new RowResolver(folder, null), sink);
            } catch (NoSuchFileException e) {
                throw new SourceException("manifest not found: " + file, e);
            }
        }
    }

    private Path localPath(String value) {
        if (value.startsWith("file:")) {
            return Path.of(URI.create(value));
        }
        return baseDir.resolve(value);
    }

    private static void read(InputStream in, String name, RowResolver resolver, Consumer<SourceItem> sink)
            throws IOException {
        Reader reader = new InputStreamReader(in, StandardCharsets.UTF_8);
        String lower = name.toLowerCase(Locale.ROOT);
        Consumer<ManifestRow> rows = row -> sink.accept(resolver.resolve(name, row));
        if (lower.endsWith(".csv")) {
            CsvManifestReader.read(reader, name, header -> checkHeader(name, header), rows);
        } else if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) {
            JsonlManifestReader.read(reader, name, rows);
        } else {
            throw new SourceException("manifest " + name + ": unknown format; name it *.csv (with a header row) or *.jsonl");
        }
    }

    private static void checkHeader(String name, List<String> header) {
        long locations = LOCATION_COLUMNS.stream().filter(header::contains).count();
        if (locations == 0) {
            throw new SourceException(name + " line 1: the header needs a 'path' or 'uri' column, found " + header);
        }
        if (locations > 1) {
            throw new SourceException(name + " line 1: the header has both 'path' and 'uri'; keep one");
        }
    }

    /** Turns rows into items: resolves locations, picks the key, checks that keys are unique. */
    private static final class RowResolver {
        private final Path folder;          // for a local manifest
        private final S3Uri manifestOnS3;   // for a manifest on S3
        private final Map<String, Long> firstLineOfKey = new HashMap<>();

        RowResolver(Path folder, S3Uri manifestOnS3) {
            this.folder = folder;
            this.manifestOnS3 = manifestOnS3;
        }

        SourceItem resolve(String name, ManifestRow row) {
            Map<String, String> fields = row.fields();
            String prefix = name + " line " + row.line() + ": ";
            String column = fields.containsKey("path") ? "path" : fields.containsKey("uri") ? "uri" : null;
            if (column == null) {
                throw new SourceException(prefix + "no 'path' or 'uri' field");
            }
            if (fields.containsKey("path") && fields.containsKey("uri")) {
                throw new SourceException(prefix + "both 'path' and 'uri' given; keep one");
            }
            String value = fields.get(column).strip();
            if (value.isEmpty()) {
                throw new SourceException(prefix + "empty '" + column + "'");
            }
            String key = value;
            if (fields.containsKey(ID)) {
                key = fields.get(ID).strip();
                if (key.isEmpty()) {
                    throw new SourceException(prefix + "empty 'id'");
                }
            }
            Long first = firstLineOfKey.putIfAbsent(key, row.line());
            if (first != null) {
                throw new SourceException(prefix + "duplicate " + (fields.containsKey(ID) ? "id" : column)
                        + " '" + key + "' (first on line " + first + ")");
            }
            Map<String, String> metadata = new LinkedHashMap<>(fields);
            metadata.remove(column);
            metadata.remove(ID);
            return new SourceItem(key, uriOf(value, prefix), metadata);
        }

        private String uriOf(String value, String prefix) {
            if (S3Uri.isS3(value)) {
                S3Uri uri = S3Uri.parse(value);
                if (uri.key().isEmpty() || uri.key().endsWith("/")) {
                    throw new SourceException(prefix + "'" + value + "' names no object");
                }
                return uri.toString();
            }
            if (value.startsWith("file:")) {
                try {
                    return Path.of(URI.create(value)).normalize().toUri().toString();
                } catch (IllegalArgumentException e) {
                    throw new SourceException(prefix + "bad file URI '" + value + "': " + e.getMessage(), e);
                }
            }
            if (URI_SCHEME.matcher(value).find()) {
                throw new SourceException(prefix + "unsupported location '" + value
                        + "' (use a local path, a file: URI or an s3:// URI)");
            }
            Path path = Path.of(value);
            if (path.isAbsolute()) {
                return path.normalize().toUri().toString();
            }
            if (manifestOnS3 != null) {
                String relative = value.startsWith("./") ? value.substring(2) : value;
                return new S3Uri(manifestOnS3.bucket(), manifestOnS3.keyFolder() + relative).toString();
            }
            return folder.resolve(path).normalize().toUri().toString();
        }
    }
}
