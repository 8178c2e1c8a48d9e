package io.vlmbatch.source;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class UriImageFetcherTest {

    @TempDir
    Path tmp;

    @Test
    void readsFilesWithinTheLimit() throws IOException {
        Path file = tmp.resolve("a b.jpg");
        Files.write(file, new byte[1000]);
        try (ImageFetcher fetcher = Sources.fetcher(null)) {
            assertThat(fetcher.fetch(file.toUri().toString(), 1000)).hasSize(1000);
            assertThatThrownBy(() -> fetcher.fetch(file.toUri().toString(), 999))
                    .isInstanceOf(FetchTooLargeException.class)
                    .hasMessageStartingWith("file too large: 1000 bytes exceeds the 999-byte limit");
        }
    }

    @Test
    void missingFilesAndOtherSchemesAreReported() {
        try (ImageFetcher fetcher = Sources.fetcher(null)) {
            assertThatThrownBy(() -> fetcher.fetch(tmp.resolve("none.jpg").toUri().toString(), 10))
                    .isInstanceOf(NoSuchFileException.class);
            assertThatThrownBy(() -> fetcher.fetch("http://example.com/a.jpg", 10))
                    .isInstanceOf(IOException.class)
                    .hasMessage("unsupported URI (expected file: or s3://): http://example.com/a.jpg");
        }
    }

    @Test
    void folderSourceUrisAreFetchable() throws IOException {
        Files.writeString(tmp.resolve("x.png"), "content");
        StringBuilder fetched = new StringBuilder();
        try (ImageFetcher fetcher = Sources.fetcher(null)) {
            Sources.open(SourceSpec.folder("."), tmp).discover(item -> {
                try {
                    fetched.append(new String(fetcher.fetch(item.uri(), 100)));
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
        }
        assertThat(fetched.toString()).isEqualTo("content");
    }

    @Test
    void s3UriParsing() {
        assertThat(S3Uri.parse("s3://bucket/a b/c%20.jpg")).isEqualTo(new S3Uri("bucket", "a b/c%20.jpg"));
        assertThat(S3Uri.parse("S3://bucket")).isEqualTo(new S3Uri("bucket", ""));
        assertThat(new S3Uri("b", "x/y/z.jpg").keyFolder()).isEqualTo("x/y/");
        assertThatThrownBy(() -> S3Uri.parse("s3:///key")).isInstanceOf(SourceException.class).hasMessageContaining("without a bucket");
    }
}
