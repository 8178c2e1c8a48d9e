package io.vlmbatch.source;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ManifestSourceTest {

    @TempDir
    Path tmp;

    private List<SourceItem> discover(String name, String content) throws IOException {
        Path dir = tmp.resolve("lists");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve(name), content);
        return Discovered.items(SourceSpec.manifest("lists/" + name, null), tmp);
    }

    private String fileUri(Path p) {
        return p.toAbsolutePath().normalize().toUri().toString();
    }

    // ---- CSV -----------------------------------------------------------------------------------

    @Test
    void csvRowsBecomeItemsWithMetadata() throws IOException {
        List<SourceItem> items = discover("m.csv", """
                id,path,sku,title
                p1,img/a.jpg,SKU-1,"Red mug, large"
                p2,/data/b.png,SKU-2,"Says ""hi""\"
                p3,s3://bucket/photos/c.jpg,SKU-3,
                """);
        assertThat(items).containsExactly(
                new SourceItem("p1", fileUri(tmp.resolve("lists/img/a.jpg")), Map.of("sku", "SKU-1", "title", "Red mug, large")),
                new SourceItem("p2", "file:///data/b.png", Map.of("sku", "SKU-2", "title", "Says \"hi\"")),
                new SourceItem("p3", "s3://bucket/photos/c.jpg", Map.of("sku", "SKU-3", "title", "")));
        assertThat(items.get(0).metadata().keySet()).containsExactly("sku", "title"); // column order kept
    }

    @Test
    void withoutIdTheKeyIsThePathAsWritten() throws IOException {
        List<SourceItem> items = discover("m.csv", "uri\n../elsewhere/x.jpg\nfile:///abs/y.jpg\n");
        assertThat(items).extracting(SourceItem::itemKey).containsExactly("../elsewhere/x.jpg", "file:///abs/y.jpg");
        assertThat(items).extracting(SourceItem::uri)
                .containsExactly(fileUri(tmp.resolve("elsewhere/x.jpg")), "file:///abs/y.jpg");
    }

    @Test
    void csvQuirks() throws IOException {
        // byte-order mark, CRLF, a blank line, spaces around values, a quoted value across lines
        List<SourceItem> items = discover("m.csv",
                "\uFEFFpath , caption\r\na.jpg , one\r\n\r\nb.jpg,\"two\nlines\"\r\nc.jpg,three");
        assertThat(items).extracting(SourceItem::itemKey).containsExactly("a.jpg", "b.jpg", "c.jpg");
        assertThat(items.get(1).metadata()).containsEntry("caption", "two\nlines");
    }

    @Test
    void headerWithoutPathOrUriIsRejected() {
        assertThatThrownBy(() -> discover("m.csv", "file,id\na.jpg,1\n"))
                .isInstanceOf(SourceException.class)
                .hasMessageEndingWith("m.csv line 1: the header needs a 'path' or 'uri' column, found [file, id]");
        assertThatThrownBy(() -> discover("m.csv", "path,uri\na.jpg,b.jpg\n"))
                .hasMessageEndingWith("m.csv line 1: the header has both 'path' and 'uri'; keep one");
        assertThatThrownBy(() -> discover("m.csv", "")).hasMessageContaining("empty manifest");
        assertThatThrownBy(() -> discover("m.csv", "path,tag,tag\na.jpg,x,y\n")).hasMessageContaining("line 1: bad CSV header");
    }

    @Test
    void badCsvRowsNameTheirLine() {
        assertThatThrownBy(() -> discover("m.csv", "path,tag\na.jpg,x\nb.jpg,y,extra\n"))
                .isInstanceOf(SourceException.class)
                .hasMessageEndingWith("m.csv line 3: 3 fields but the header has 2");
        assertThatThrownBy(() -> discover("m.csv", "path,tag\na.jpg,x\n\n ,y\n"))
                .hasMessageEndingWith("m.csv line 4: empty 'path'");
        assertThatThrownBy(() -> discover("m.csv", "id,path\n1,a.jpg\n2,b.jpg\n1,c.jpg\n"))
                .hasMessageEndingWith("m.csv line 4: duplicate id '1' (first on line 2)");
        assertThatThrownBy(() -> discover("m.csv", "path\na.jpg\na.jpg\n"))
                .hasMessageEndingWith("m.csv line 3: duplicate path 'a.jpg' (first on line 2)");
        assertThatThrownBy(() -> discover("m.csv", "id,path\n,a.jpg\n"))
                .hasMessageEndingWith("m.csv line 2: empty 'id'");
        assertThatThrownBy(() -> discover("m.csv", "path\nhttps://example.com/a.jpg\n"))
                .hasMessageEndingWith("m.csv line 2: unsupported location 'https://example.com/a.jpg' (use a local path, a file: URI or an s3:// URI)");
        assertThatThrownBy(() -> discover("m.csv", "path\ns3://bucket/dir/\n"))
                .hasMessageEndingWith("m.csv line 2: 's3://bucket/dir/' names no object");
        assertThatThrownBy(() -> discover("m.csv", "path,tag\na.jpg,\"unclosed\nb.jpg,x\n"))
                .hasMessageContaining("m.csv line 2: malformed CSV");
    }

    // ---- JSONL ---------------------------------------------------------------------------------

    @Test
    void jsonlRowsBecomeItems() throws IOException {
        List<SourceItem> items = discover("m.jsonl", """
                {"id": "x1", "uri": "s3://b/k/1.jpg", "labels": ["cat", "dog"], "score": 0.5, "ok": true, "note": null}

                {"path": "rel/2.png", "caption": "ünïcödé"}
                """);
        assertThat(items).containsExactly(
                new SourceItem("x1", "s3://b/k/1.jpg", Map.of("labels", "[\"cat\",\"dog\"]", "score", "0.5", "ok", "true")),
                new SourceItem("rel/2.png", fileUri(tmp.resolve("lists/rel/2.png")), Map.of("caption", "ünïcödé")));
    }

    @Test
    void badJsonlRowsNameTheirLine() {
        assertThatThrownBy(() -> discover("m.jsonl", "{\"path\": \"a.jpg\"}\n{\"path\": \"b.jpg\"\n"))
                .isInstanceOf(SourceException.class)
                .hasMessageContaining("m.jsonl line 2: invalid JSON");
        assertThatThrownBy(() -> discover("m.ndjson", "[\"a.jpg\"]\n"))
                .hasMessageEndingWith("m.ndjson line 1: expected a JSON object, got array");
        assertThatThrownBy(() -> discover("m.jsonl", "{\"path\": \"a.jpg\"}\n{\"file\": \"b.jpg\"}\n"))
                .hasMessageEndingWith("m.jsonl line 2: no 'path' or 'uri' field");
        assertThatThrownBy(() -> discover("m.jsonl", "{\"path\": \"a.jpg\", \"uri\": \"s3://b/a.jpg\"}\n"))
                .hasMessageEndingWith("m.jsonl line 1: both 'path' and 'uri' given; keep one");
    }

    // ---- the manifest itself -------------------------------------------------------------------

    @Test
    void unknownManifestTypeAndMissingManifestAreClear() throws IOException {
        assertThatThrownBy(() -> discover("m.txt", "path\na.jpg\n"))
                .isInstanceOf(SourceException.class)
                .hasMessageContaining("unknown format; name it *.csv (with a header row) or *.jsonl");
        assertThatThrownBy(() -> Sources.open(SourceSpec.manifest("missing.csv", null), tmp).discover(i -> {}))
                .isInstanceOf(SourceException.class)
                .hasMessage("manifest not found: " + tmp.resolve("missing.csv"));
    }

    @Test
    void globsDoNotApplyToManifests() {
        SourceSpec spec = SourceSpec.manifest("m.csv", null).withInclude(List.of("*.jpg"));
        assertThatThrownBy(() -> Sources.open(spec, tmp))
                .isInstanceOf(SourceException.class)
                .hasMessageContaining("not to a manifest");
    }

    @Test
    void rowsStreamToTheSinkInFileOrder() throws IOException {
        StringBuilder csv = new StringBuilder("path,n\n");
        for (int i = 0; i < 5000; i++) {
            csv.append("img/").append(i).append(".jpg,").append(i).append('\n');
        }
        List<SourceItem> items = discover("big.csv", csv.toString());
        assertThat(items).hasSize(5000);
        assertThat(items.get(4321).metadata()).containsEntry("n", "4321");
        assertThat(items.get(4321).itemKey()).isEqualTo("img/4321.jpg");
    }
}
