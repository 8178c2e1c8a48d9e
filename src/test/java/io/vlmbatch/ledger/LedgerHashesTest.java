package io.vlmbatch.ledger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vlmbatch.image.ResizeSpec;
import io.vlmbatch.job.TaskSpec;
import io.vlmbatch.template.TextTemplate;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import io.vlmbatch.store.WorkItem;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class LedgerHashesTest {
    private static final ResizeSpec RESIZE = ResizeSpec.defaults();
    private static final TaskSpec KIND = new TaskSpec("kind", TextTemplate.builtIn("classify"), List.of("photo", "chart"), 16, null, null, null);

    @Test
    void contentHashIsTheSha256OfTheBytes() {
        // the published SHA-256 test vector of "abc"
        assertThat(ContentHash.of("abc".getBytes(StandardCharsets.US_ASCII)))
                .isEqualTo("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    @Test
    void anItemInAContainerIsHashedByItsMemberBytesOrByItsDocumentMemberAndPage() {
        byte[] doc = "%PDF-1.7 a document".getBytes(StandardCharsets.US_ASCII);
        byte[] image = "a member image".getBytes(StandardCharsets.US_ASCII);
        int[] opens = {0};
        DocumentHashes.Opener opener = () -> {
            opens[0]++;
            return new ByteArrayInputStream(doc);
        };
        DocumentHashes documents = new DocumentHashes(2);
        WorkItem member = new WorkItem(0, 0, "box.zip!/a.jpg", "file:/x/box.zip", Map.of(), "a.jpg", null);
        WorkItem page1 = new WorkItem(0, 0, "box.zip!/d.pdf#p1", "file:/x/box.zip", Map.of(), "d.pdf", 1);
        WorkItem page2 = new WorkItem(0, 0, "box.zip!/d.pdf#p2", "file:/x/box.zip", Map.of(), "d.pdf", 2);
        assertThat(documents.itemHash(member, image, opener)).isEqualTo(ContentHash.of(image));
        assertThat(documents.itemHash(page1, null, opener)).isEqualTo(ContentHash.ofPart(ContentHash.of(doc), "d.pdf", 1));
        assertThat(documents.itemHash(page2, null, opener)).isEqualTo(ContentHash.ofPart(ContentHash.of(doc), "d.pdf", 2))
                .isNotEqualTo(documents.itemHash(page1, null, opener));
        assertThat(opens[0]).as("the document is read once for all its pages").isEqualTo(1);
        assertThatThrownBy(() -> documents.itemHash(member, null, opener)).isInstanceOf(NullPointerException.class);
    }

    @Test
    void pagesOfOneDocumentDifferFromEachOtherAndFromTheFile() throws Exception {
        byte[] doc = new byte[200_000];
        for (int i = 0; i < doc.length; i++) doc[i] = (byte) (i * 31);
        String p1 = ContentHash.ofPage(new ByteArrayInputStream(doc), 1);
        String p2 = ContentHash.ofPage(new ByteArrayInputStream(doc), 2);
        assertThat(p1).isNotEqualTo(p2).isNotEqualTo(ContentHash.of(doc)).hasSize(64);
        assertThat(ContentHash.ofPage(new ByteArrayInputStream(doc), 1)).isEqualTo(p1);
        doc[100] ^= 1;
        assertThat(ContentHash.ofPage(new ByteArrayInputStream(doc), 1)).isNotEqualTo(p1);
        assertThatThrownBy(() -> ContentHash.ofPage(new ByteArrayInputStream(doc), 0)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void partsOfADocumentAreKeyedByItsHashMemberAndPageAndTheDocumentIsReadOnce() throws Exception {
        byte[] doc = "%PDF-1.7 pretend".getBytes(StandardCharsets.US_ASCII);
        String h = ContentHash.ofStream(new ByteArrayInputStream(doc));
        assertThat(h).isEqualTo(ContentHash.of(doc));
        assertThat(Set.of(ContentHash.ofPart(h, null, 1), ContentHash.ofPart(h, null, 2), ContentHash.ofPart(h, "a.pdf", 1),
                ContentHash.ofPart(h, "", null), ContentHash.ofPart(ContentHash.of(new byte[1]), null, 1))).hasSize(5);
        assertThat(ContentHash.ofPart(h, null, 1)).isEqualTo(ContentHash.ofPart(h, "", 1));
        // a member name cannot pose as another (member, page) pair
        assertThat(ContentHash.ofPart(h, "x\u00001", 2)).isNotEqualTo(ContentHash.ofPart(h, "x", 12));

        DocumentHashes cache = new DocumentHashes(2);
        int[] opened = {0};
        DocumentHashes.Opener open = () -> {
            opened[0]++;
            return new ByteArrayInputStream(doc);
        };
        for (int page = 1; page <= 50; page++) assertThat(cache.hash("file:///d.pdf", open)).isEqualTo(h);
        assertThat(opened[0]).isEqualTo(1);
        assertThatThrownBy(() -> cache.hash("file:///gone.pdf", () -> {
            throw new java.nio.file.NoSuchFileException("/gone.pdf");
        })).hasMessageContaining("cannot read file:///gone.pdf");
    }

    @Test
    void everyFieldThatDeterminesTheAnswerChangesTheFingerprint() {
        String base = TaskFingerprint.of("glm-4v-9b", "Which one?", KIND, RESIZE);
        Set<String> all = new HashSet<>(List.of(base,
                TaskFingerprint.of("glm-4v-9b-nf4", "Which one?", KIND, RESIZE),
                TaskFingerprint.of("glm-4v-9b", "Which one? ", KIND, RESIZE),
                TaskFingerprint.of("glm-4v-9b", "Which one?", with(KIND, List.of("chart", "photo"), 16, null, null, null), RESIZE),
                TaskFingerprint.of("glm-4v-9b", "Which one?", with(KIND, KIND.labels(), 17, null, null, null), RESIZE),
                TaskFingerprint.of("glm-4v-9b", "Which one?", with(KIND, KIND.labels(), 16, 0.2, null, null), RESIZE),
                TaskFingerprint.of("glm-4v-9b", "Which one?", with(KIND, KIND.labels(), 16, null, 0.9, null), RESIZE),
                TaskFingerprint.of("glm-4v-9b", "Which one?", with(KIND, KIND.labels(), 16, null, null, 7L), RESIZE),
                TaskFingerprint.of("glm-4v-9b", "Which one?", KIND, new ResizeSpec(896, RESIZE.maxPixels(), "jpeg", 0.9f)),
                TaskFingerprint.of("glm-4v-9b", "Which one?", KIND, new ResizeSpec(1120, RESIZE.maxPixels(), "png", 0.9f)),
                TaskFingerprint.of("glm-4v-9b", "Which one?", KIND, new ResizeSpec(1120, RESIZE.maxPixels(), "jpeg", 0.8f))));
        assertThat(all).hasSize(11);
        // the task's name is not part of the question
        TaskSpec renamed = new TaskSpec("sort", KIND.template(), KIND.labels(), 16, null, null, null);
        assertThat(TaskFingerprint.of("glm-4v-9b", "Which one?", renamed, RESIZE)).isEqualTo(base);
    }

    @Test
    void aPdfPagesDpiChangesTheFingerprintAndTheDefaultRenderKeepsTheOldOne() {
        io.vlmbatch.archive.RenderSpec dpi150 = new io.vlmbatch.archive.RenderSpec(1120, 150, RESIZE.maxPixels());
        io.vlmbatch.archive.RenderSpec dpi200 = new io.vlmbatch.archive.RenderSpec(1120, 200, RESIZE.maxPixels());
        String base = TaskFingerprint.of("glm-4v-9b", "Read it", KIND, RESIZE);
        assertThat(io.vlmbatch.archive.RenderSpec.defaults().pdfSettings()).isNull();
        assertThat(TaskFingerprint.of("glm-4v-9b", "Read it", KIND, RESIZE, io.vlmbatch.archive.RenderSpec.defaults().pdfSettings()))
                .isEqualTo(base);
        assertThat(Set.of(base, TaskFingerprint.of("glm-4v-9b", "Read it", KIND, RESIZE, dpi150.pdfSettings()),
                TaskFingerprint.of("glm-4v-9b", "Read it", KIND, RESIZE, dpi200.pdfSettings()))).hasSize(3);
    }

    @Test
    void fieldBoundariesCannotBeShifted() {
        TaskSpec ab = new TaskSpec("t", KIND.template(), List.of("a,b", "c"), 16, null, null, null);
        TaskSpec abc = new TaskSpec("t", KIND.template(), List.of("a", "b,c"), 16, null, null, null);
        assertThat(TaskFingerprint.of("m", "p", ab, RESIZE)).isNotEqualTo(TaskFingerprint.of("m", "p", abc, RESIZE));
        assertThat(TaskFingerprint.of("m1", "p", KIND, RESIZE)).isNotEqualTo(TaskFingerprint.of("m", "1p", KIND, RESIZE));
    }

    private static TaskSpec with(TaskSpec t, List<String> labels, int maxTokens, Double temperature, Double topP, Long seed) {
        return new TaskSpec(t.name(), t.template(), labels, maxTokens, temperature, topP, seed);
    }
}
