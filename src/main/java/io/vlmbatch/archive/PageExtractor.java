package io.vlmbatch.archive;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayDeque;
import java.util.Deque;

import org.apache.pdfbox.pdmodel.PDDocument;

/**
 * The processor's half of archive support: for one work item's lineage, walks from the listed file
 * down its member path and renders the page, decodes the frame, or reads the member image. One page
 * at a time: members are streamed, documents read in place, nothing is written to disk. Thread-safe
 * (each call opens its own readers).
 */
public final class PageExtractor {

    private final ExpandSpec spec;
    private final RenderSpec render;

    public PageExtractor(ExpandSpec spec, RenderSpec render) {
        this.spec = spec == null ? ExpandSpec.defaults() : spec;
        this.render = render == null ? RenderSpec.defaults() : render;
    }

    /**
     * @param file    the listed file ({@link Lineage#sourceUri}), opened by the caller
     * @param member  the member path, nested levels joined by {@code !/}; empty for the file itself
     * @param page    1-based page or frame; null for a whole image
     * @throws ArchiveRejectedException with the reason to record for this item
     * @throws IOException              when the listed file cannot be read (missing, network)
     */
    public Extracted extract(ByteSource file, String member, Integer page) throws IOException {
        Deque<Archive> open = new ArrayDeque<>();
        try {
            ByteSource leaf = leaf(file, member, open);
            if (page == null) {
                return new Extracted.ImageBytes(readWhole(leaf));
            }
            Format format = Format.detect(leaf);
            String renderedWith = renderedWith(format, leaf, page);
            if (format == Format.PDF) {
                try (PDDocument doc = PdfPages.open(leaf)) {
                    BufferedImage image = PdfPages.render(doc, page, render);
                    return new Extracted.Page(image, image.getWidth(), image.getHeight(), renderedWith);
                }
            }
            BufferedImage image = TiffFrames.decode(leaf, page, render);
            return new Extracted.Page(image, image.getWidth(), image.getHeight(), renderedWith);
        } catch (OutOfMemoryError e) {
            // A hostile page (a huge image mask, a pattern) must fail alone, not the run.
            throw new ArchiveRejectedException("page too large to render in memory");
        } finally {
            close(open);
        }
    }

    /**
     * What {@link #extract} would report as {@link Extracted.Page#renderedWith} for this page, without
     * rendering it: `plan` fingerprints pages exactly as the run does at the cost of reading a few header bytes.
     */
    public String renderedWith(ByteSource file, String member, int page) throws IOException {
        Deque<Archive> open = new ArrayDeque<>();
        try {
            ByteSource leaf = leaf(file, member, open);
            return renderedWith(Format.detect(leaf), leaf, page);
        } finally {
            close(open);
        }
    }

    /** The render settings that shape a page of this format; refuses formats that have no pages. */
    private String renderedWith(Format format, ByteSource leaf, int page) throws ArchiveRejectedException {
        return switch (format) {
            case PDF -> render.pdfSettings();
            case TIFF -> null;
            default -> throw new ArchiveRejectedException("page " + page + " asked of " + leaf.name()
                    + ", which is not a PDF or TIFF");
        };
    }

    private ByteSource leaf(ByteSource file, String member, Deque<Archive> open) throws IOException {
        return member == null || member.isEmpty() ? file : resolve(file, member, 1, open);
    }

    private static void close(Deque<Archive> open) {
        while (!open.isEmpty()) {
            try {
                open.pop().close();
            } catch (IOException ignored) {
                // closing a reader we only read from
            }
        }
    }

    /**
     * Finds {@code path} inside {@code container}. A member name may itself contain {@code !/}, so the
     * shortest prefix naming a member is tried first and longer ones only if that leads nowhere.
     */
    private ByteSource resolve(ByteSource container, String path, int depth, Deque<Archive> open) throws IOException {
        if (depth > spec.maxDepth()) {
            throw new ArchiveRejectedException("containers nested more than " + spec.maxDepth() + " deep");
        }
        Format format = Format.detect(container);
        if (format != Format.ZIP && format != Format.TAR && format != Format.TAR_GZ) {
            throw new ArchiveRejectedException(container.name() + " is not a ZIP or TAR archive");
        }
        Archive archive = Archive.open(format, container, spec);
        open.push(archive);
        int from = 0;
        ArchiveRejectedException deeper = null;
        while (true) {
            int sep = path.indexOf(Lineage.MEMBER_SEPARATOR, from);
            String name = sep < 0 ? path : path.substring(0, sep);
            ByteSource found = archive.find(name);
            if (found != null) {
                if (sep < 0) {
                    return found;
                }
                try {
                    return resolve(found, path.substring(sep + Lineage.MEMBER_SEPARATOR.length()), depth + 1, open);
                } catch (ArchiveRejectedException e) {
                    deeper = e; // perhaps the name goes on past this "!/": try the longer one
                }
            }
            if (sep < 0) {
                throw deeper != null ? deeper
                        : new ArchiveRejectedException("no member " + path + " in " + container.name());
            }
            from = sep + Lineage.MEMBER_SEPARATOR.length();
        }
    }

    private byte[] readWhole(ByteSource source) throws IOException {
        long size = source.size();
        if (size > spec.maxMemberBytes()) {
            throw new ArchiveRejectedException("member of " + size + " bytes, more than the limit of " + spec.maxMemberBytes());
        }
        try (InputStream in = new CappedInputStream(source.openAt(0), spec.maxMemberBytes(), true, source.name())) {
            return in.readAllBytes();
        }
    }
}
