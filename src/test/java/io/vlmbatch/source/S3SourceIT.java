package io.vlmbatch.source;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vlmbatch.image.ImagePreparer;
import io.vlmbatch.image.PreparedImage;
import io.vlmbatch.image.ResizeSpec;
import io.vlmbatch.image.TestImages;
import io.vlmbatch.testsupport.S3MockServer;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Response;

/** S3 listing, fetching and S3-hosted manifests against a real S3-compatible server (S3Mock) over HTTP. */
class S3SourceIT {

    private static final String BUCKET = "photos";
    private static S3MockServer server;
    private static S3Settings settings;
    private static final Map<String, byte[]> objects = new LinkedHashMap<>();

    @TempDir
    Path tmp;

    @BeforeAll
    static void startServerAndUpload() throws Exception {
        server = S3MockServer.start();
        S3MockServer.useDummyCredentials();
        settings = new S3Settings(server.endpoint(), null, true); // region from the SDK's default chain
        byte[] jpeg = TestImages.encode(TestImages.quadrants(300, 200, BufferedImage.TYPE_3BYTE_BGR,
                Color.RED, Color.GREEN, Color.BLUE, Color.WHITE), "jpeg");
        byte[] png = TestImages.encode(TestImages.quadrants(200, 300, BufferedImage.TYPE_INT_RGB,
                Color.RED, Color.GREEN, Color.BLUE, Color.WHITE), "png");
        objects.put("uploads/2024-01-01/a.jpg", jpeg);
        objects.put("uploads/2024-01-01/b.png", png);
        objects.put("uploads/2024-01-01/notes.txt", "not an image".getBytes(StandardCharsets.UTF_8));
        objects.put("uploads/2024-01-01/sub/", new byte[0]); // a "folder" marker, as consoles create
        objects.put("uploads/2024-01-01/sub/c d.jpg", jpeg);
        objects.put("uploads/2024-01-01/thumbs/e.jpg", jpeg);
        objects.put("uploads/2024-01-02/f.jpg", jpeg);
        objects.put("manifests/today.csv", """
                id,path,caption
                first,../uploads/2024-01-01/a.jpg,never used
                """.getBytes(StandardCharsets.UTF_8));
        objects.put("uploads/manifest.csv", """
                id,path,caption
                a,2024-01-01/a.jpg,"a cat, probably"
                f,s3://photos/uploads/2024-01-02/f.jpg,
                p,2024-01-01/b.png,portrait
                """.getBytes(StandardCharsets.UTF_8));
        objects.put("uploads/manifest.jsonl", """
                {"uri": "2024-01-01/sub/c d.jpg", "n": 3}
                """.getBytes(StandardCharsets.UTF_8));
        try (S3Client s3 = S3Clients.create(settings)) {
            s3.createBucket(b -> b.bucket(BUCKET));
            objects.forEach((key, bytes) -> s3.putObject(b -> b.bucket(BUCKET).key(key), RequestBody.fromBytes(bytes)));
        }
    }

    @AfterAll
    static void stopServer() {
        if (server != null) {
            server.close();
        }
    }

    @Test
    void listsImagesUnderAPrefixInKeyOrder() throws IOException {
        List<SourceItem> items = Discovered.items(SourceSpec.s3("s3://photos/uploads/2024-01-01/", settings), tmp);
        assertThat(Discovered.keys(items)).containsExactly("uploads/2024-01-01/a.jpg", "uploads/2024-01-01/b.png",
                "uploads/2024-01-01/sub/c d.jpg", "uploads/2024-01-01/thumbs/e.jpg");
        assertThat(items.get(2).uri()).isEqualTo("s3://photos/uploads/2024-01-01/sub/c d.jpg");
        assertThat(items).allSatisfy(i -> assertThat(i.metadata()).isEmpty());
    }

    @Test
    void followsPaginationToTheEnd() throws IOException {
        try (S3Client s3 = S3Clients.create(settings)) {
            ListObjectsV2Response first = s3.listObjectsV2(b -> b.bucket(BUCKET).prefix("uploads/").maxKeys(2));
            assertThat(first.isTruncated()).as("the server pages at 2 keys").isTrue();
        }
        S3Source paged = new S3Source(S3Uri.parse("s3://photos/uploads/"), new PathFilter(List.of(), List.of()),
                true, () -> S3Clients.create(settings), 2);
        List<String> pagedKeys = new ArrayList<>();
        paged.discover(item -> pagedKeys.add(item.itemKey()));
        assertThat(pagedKeys).containsExactlyElementsOf(Discovered.keys(Discovered.items(SourceSpec.s3("s3://photos/uploads/", settings), tmp)));
        assertThat(pagedKeys).hasSize(5).isSorted();
    }

    @Test
    void globsMatchKeysRelativeToThePrefixFolder() throws IOException {
        SourceSpec jpgsButThumbs = SourceSpec.s3("s3://photos/uploads/2024-01-01/", settings)
                .withInclude(List.of("*.jpg")).withExclude(List.of("thumbs/**"));
        assertThat(Discovered.keys(Discovered.items(jpgsButThumbs, tmp))).containsExactly("uploads/2024-01-01/a.jpg", "uploads/2024-01-01/sub/c d.jpg");

        // a prefix that ends inside a name: globs see the key from the prefix's folder on
        SourceSpec secondDay = SourceSpec.s3("s3://photos/uploads/2024-01-0", settings).withInclude(List.of("2024-01-02/*"));
        assertThat(Discovered.keys(Discovered.items(secondDay, tmp))).containsExactly("uploads/2024-01-02/f.jpg");

        SourceSpec texts = SourceSpec.s3("s3://photos/uploads/", settings).withInclude(List.of("*.txt"));
        assertThat(Discovered.keys(Discovered.items(texts, tmp))).containsExactly("uploads/2024-01-01/notes.txt");
    }

    @Test
    void notRecursiveListsOneLevel() throws IOException {
        assertThat(Discovered.keys(Discovered.items(SourceSpec.s3("s3://photos/uploads/2024-01-01/", settings).withRecursive(false), tmp)))
                .containsExactly("uploads/2024-01-01/a.jpg", "uploads/2024-01-01/b.png");
    }

    @Test
    void missingBucketIsAClearError() {
        assertThatThrownBy(() -> Discovered.items(SourceSpec.s3("s3://no-such-bucket/x/", settings), tmp))
                .isInstanceOf(SourceException.class)
                .hasMessage("S3 bucket not found: no-such-bucket");
    }

    @Test
    void fetcherReadsObjectsAndEnforcesTheLimit() throws Exception {
        try (ImageFetcher fetcher = Sources.fetcher(settings)) {
            byte[] jpeg = objects.get("uploads/2024-01-01/a.jpg");
            assertThat(fetcher.fetch("s3://photos/uploads/2024-01-01/a.jpg", 10_000_000)).isEqualTo(jpeg);
            assertThat(fetcher.fetch("s3://photos/uploads/2024-01-01/sub/c d.jpg", jpeg.length)).isEqualTo(jpeg);
            assertThatThrownBy(() -> fetcher.fetch("s3://photos/uploads/2024-01-01/a.jpg", jpeg.length - 1))
                    .isInstanceOf(FetchTooLargeException.class)
                    .hasMessageStartingWith("file too large: " + jpeg.length + " bytes");
            assertThatThrownBy(() -> fetcher.fetch("s3://photos/uploads/missing.jpg", 1000))
                    .isInstanceOf(NoSuchFileException.class)
                    .hasMessageContaining("s3://photos/uploads/missing.jpg");
            assertThatThrownBy(() -> fetcher.fetch("s3://no-such-bucket/a.jpg", 1000))
                    .isInstanceOf(NoSuchFileException.class);
        }
    }

    @Test
    void manifestOnS3ResolvesRelativePathsInItsFolderAndItemsFetchAndPrepare() throws Exception {
        List<SourceItem> items = Discovered.items(SourceSpec.manifest("s3://photos/uploads/manifest.csv", settings), tmp);
        assertThat(items).containsExactly(
                new SourceItem("a", "s3://photos/uploads/2024-01-01/a.jpg", Map.of("caption", "a cat, probably")),
                new SourceItem("f", "s3://photos/uploads/2024-01-02/f.jpg", Map.of("caption", "")),
                new SourceItem("p", "s3://photos/uploads/2024-01-01/b.png", Map.of("caption", "portrait")));

        ImagePreparer preparer = new ImagePreparer(ResizeSpec.defaults());
        try (ImageFetcher fetcher = Sources.fetcher(settings)) {
            for (SourceItem item : items) {
                PreparedImage image = preparer.prepare(fetcher.fetch(item.uri(), 10_000_000), item.itemKey());
                assertThat(image.mimeType()).isEqualTo("image/jpeg");
                assertThat(new int[] {image.width(), image.height()})
                        .containsExactly(item.itemKey().equals("p") ? new int[] {200, 300} : new int[] {300, 200});
            }
        }

        List<SourceItem> jsonl = Discovered.items(SourceSpec.manifest("s3://photos/uploads/manifest.jsonl", settings), tmp);
        assertThat(jsonl).containsExactly(
                new SourceItem("2024-01-01/sub/c d.jpg", "s3://photos/uploads/2024-01-01/sub/c d.jpg", Map.of("n", "3")));
    }

    @Test
    void missingManifestOnS3IsAClearError() {
        assertThatThrownBy(() -> Discovered.items(SourceSpec.manifest("s3://photos/none.jsonl", settings), tmp))
                .isInstanceOf(SourceException.class)
                .hasMessage("manifest not found: s3://photos/none.jsonl");
    }
}
