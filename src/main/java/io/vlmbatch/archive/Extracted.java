package io.vlmbatch.archive;

import java.awt.image.BufferedImage;

/** What the processor gets for one work item: an image file's bytes, or a rendered / decoded page. */
public sealed interface Extracted {

    /** A member image (or a single-image file) as stored: decode it like any uploaded image. */
    record ImageBytes(byte[] bytes) implements Extracted {}

    /**
     * A PDF page rendered at the requested size, or a TIFF frame decoded (possibly subsampled).
     *
     * @param originalWidth  the page's size at the render resolution, or the frame's stored size
     * @param originalHeight likewise
     * @param renderedWith   the settings beyond the job's resize that shaped these pixels (a PDF's
     *                       {@code pdf.dpi}), for the ledger's fingerprint; null when there are none
     */
    record Page(BufferedImage image, int originalWidth, int originalHeight, String renderedWith) implements Extracted {

        public Page(BufferedImage image, int originalWidth, int originalHeight) {
            this(image, originalWidth, originalHeight, null);
        }
    }
}
