package io.vlmbatch.ledger;

import io.vlmbatch.image.ResizeSpec;
import io.vlmbatch.job.TaskSpec;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Objects;

/**
 * What determines an answer, hashed: the model the server reports, the final prompt text (after the
 * template's variables are filled in), the labels in order, the sampling parameters and how the image
 * is resized before it is sent (and, for a PDF page rendered at a set {@code pdf.dpi}, that dpi). Two requests with the same fingerprint on the same bytes would ask the
 * same question; the task's name is left out on purpose (renaming a task changes no answer).
 */
public final class TaskFingerprint {
    /** Bumped when the fields below change meaning, so old fingerprints stop matching instead of lying. */
    private static final String VERSION = "v1";

    private TaskFingerprint() {}

    public static String of(String model, String prompt, TaskSpec task, ResizeSpec resize) {
        return of(model, prompt, task, resize, null);
    }

    /**
     * @param renderedWith how a page was rendered beyond the resize settings (a PDF's {@code pdf.dpi}); null
     *                     for images and default renders, which then hash exactly as before it existed
     */
    public static String of(String model, String prompt, TaskSpec task, ResizeSpec resize, String renderedWith) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(prompt, "prompt");
        MessageDigest d = ContentHash.sha256();
        field(d, VERSION);
        field(d, model);
        field(d, prompt);
        field(d, Integer.toString(task.labels().size()));
        task.labels().forEach(l -> field(d, l));
        field(d, Integer.toString(task.maxTokens()));
        field(d, String.valueOf(task.temperature()));
        field(d, String.valueOf(task.topP()));
        field(d, String.valueOf(task.seed()));
        field(d, Integer.toString(resize.maxSide()));
        field(d, Long.toString(resize.maxPixels()));
        field(d, resize.format());
        field(d, Float.toString(resize.quality()));
        if (renderedWith != null) {
            field(d, "rendered with");
            field(d, renderedWith);
        }
        return HexFormat.of().formatHex(d.digest());
    }

    /** Length-prefixed, so that ("ab", "c") and ("a", "bc") differ. */
    private static void field(MessageDigest d, String value) {
        byte[] b = value.getBytes(StandardCharsets.UTF_8);
        d.update((b.length + ":").getBytes(StandardCharsets.US_ASCII));
        d.update(b);
    }
}
