package io.vlmbatch.source;

import static io.vlmbatch.testsupport.ArchiveFiles.members;
import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.archive.ExpandSpec;
import io.vlmbatch.archive.Extracted;
import io.vlmbatch.archive.PageExtractor;
import io.vlmbatch.archive.RenderSpec;
import io.vlmbatch.testsupport.ArchiveFiles;
import io.vlmbatch.testsupport.ImageFiles;
import io.vlmbatch.testsupport.S3MockServer;
import java.awt.Color;
import java.awt.image.BufferedImage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * Archives and documents on a real S3-compatible server: listed by structure with ranged reads, then
 * each page rendered and each member read back from its lineage, listed both by prefix and by an S3 manifest.
 */
class ArchivesOnS3IT {

    private static S3MockServer server;
    private static S3Settings settings;
    private static byte[] JPEG;

    @TempDir
    Path tmp;

    @BeforeAll
    static void upload() throws Exception {
        JPEG = ImageFiles.jpeg(64, 48, 11);
        server = S3MockServer.start();
        S3MockServer.useDummyCredentials();
        settings = new S3Settings(server.endpoint(), null, true);
        try (S3Client s3 = S3Clients.create(settings)) {
            s3.createBucket(b -> b.bucket("scans"));
            put(s3, "box/letters.zip", ArchiveFiles.zip(members("a.jpg", JPEG,
                    "1903/letter.pdf", ArchiveFiles.scannedPdf(Color.RED, Color.BLUE))));
            put(s3, "box/stack.tif", ArchiveFiles.multiPageTiff(200, 300, Color.RED, Color.BLUE));
            put(s3, "box/bundle.tgz", ArchiveFiles.tarGz(members("x/b.jpg", JPEG, "x/report.pdf", ArchiveFiles.textPdf(2, "s3"))));
            put(s3, "box/m.csv", "id,path\nbox1,letters.zip\n".getBytes(StandardCharsets.UTF_8));
        }
    }

    private static void put(S3Client s3, String key, byte[] bytes) {
        s3.putObject(b -> b.bucket("scans").key(key), RequestBody.fromBytes(bytes));
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
    }

    @Test
    void aPrefixOfArchivesAndDocumentsListsPagesAndMembersAndEachComesBack() throws Exception {
        List<SourceItem> items = Discovered.items(SourceSpec.s3("s3://scans/box/", settings), tmp);
        assertThat(Discovered.keys(items)).containsExactly(
                "box/bundle.tgz!/x/b.jpg", "box/bundle.tgz!/x/report.pdf#p1", "box/bundle.tgz!/x/report.pdf#p2",
                "box/letters.zip!/a.jpg", "box/letters.zip!/1903/letter.pdf#p1", "box/letters.zip!/1903/letter.pdf#p2",
                "box/stack.tif#p1", "box/stack.tif#p2");
        SourceItem page2 = items.get(5);
        assertThat(page2.uri()).isEqualTo("s3://scans/box/letters.zip");
        assertThat(page2.member()).isEqualTo("1903/letter.pdf");
        assertThat(page2.page()).isEqualTo(2);

        PageExtractor extractor = new PageExtractor(ExpandSpec.defaults(), RenderSpec.defaults());
        try (ByteSources files = ByteSources.of(settings)) {
            BufferedImage rendered = ((Extracted.Page) extractor.extract(files.open(page2.uri()), page2.member(), page2.page())).image();
            assertThat(Math.max(rendered.getWidth(), rendered.getHeight())).isEqualTo(1120);
            int rgb = rendered.getRGB(rendered.getWidth() / 2, rendered.getHeight() / 4);
            assertThat(rgb & 0xFF).as("page 2's scan is blue").isGreaterThan(180);
            for (SourceItem member : List.of(items.get(0), items.get(3))) {
                Extracted bytes = extractor.extract(files.open(member.uri()), member.member(), member.page());
                assertThat(((Extracted.ImageBytes) bytes).bytes()).isEqualTo(JPEG);
            }
            BufferedImage frame = ((Extracted.Page) extractor.extract(files.open("s3://scans/box/stack.tif"), "", 2)).image();
            assertThat(frame.getWidth()).isEqualTo(200);
        }
    }

    @Test
    void aManifestOnS3ExpandsTheArchivesItNames() throws Exception {
        List<SourceItem> items = Discovered.items(SourceSpec.manifest("s3://scans/box/m.csv", settings), tmp);
        assertThat(Discovered.keys(items)).containsExactly("box1!/a.jpg", "box1!/1903/letter.pdf#p1", "box1!/1903/letter.pdf#p2");
        assertThat(items).allSatisfy(i -> assertThat(i.uri()).isEqualTo("s3://scans/box/letters.zip"));
    }
}
