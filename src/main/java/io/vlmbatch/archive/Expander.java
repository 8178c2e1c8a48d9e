package io.vlmbatch.archive;

import java.io.IOException;
import java.util.function.Consumer;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Discovery's half of archive support: turns one listed file into work items by reading structure
 * only (a PDF's page count, a TIFF's frame count, an archive's directory), recursing into nested
 * containers up to {@link ExpandSpec#maxDepth}. Nothing is rendered or extracted here.
 *
 * <p>A file named like a common image (.jpg, .png, ...) is passed through without being opened, so
 * a folder of photos costs no extra reads. Anything wrong with one document or member becomes a
 * failed item with its reason and the expansion goes on; members of unknown type are skipped and counted.
 */
public final class Expander {

    private static final Logger log = LoggerFactory.getLogger(Expander.class);

    private final ExpandSpec spec;

    public Expander(ExpandSpec spec) {
        this.spec = spec == null ? ExpandSpec.defaults() : spec;
    }

    /**
     * @param sourceKey the key the source gave the file (its path relative to the folder, the S3 key...)
     * @param sourceUri the file's URI, kept as the items' {@code source_uri}; a name ending like an image
     *                  (.jpg, .png...) is passed through unopened
     * @param file      its bytes
     * @param sink      receives the items, in a stable order (archive order, then page order)
     * @return counts of what was found and skipped
     * @throws IOException only when the file itself cannot be read at all (missing, permissions, network);
     *                     damaged content becomes a failed item instead
     */
    public ExpandStats expand(String sourceKey, String sourceUri, ByteSource file, Consumer<ExpandedItem> sink)
            throws IOException {
        ExpandStats stats = new ExpandStats();
        Lineage root = new Lineage(sourceUri, "", null);
        if (spec.expand().isEmpty() || Format.imageByName(sourceUri)) {
            emit(sink, stats, sourceKey, root, null);
            return stats;
        }
        Format format = Format.detect(file);
        if (!spec.expands(format)) {
            emit(sink, stats, sourceKey, root, null); // an image, or something the processor will refuse with its reason
            return stats;
        }
        expandContainer(sourceKey, root, file, format, 1, sink, stats);
        return stats;
    }

    private void expandContainer(String sourceKey, Lineage lineage, ByteSource file, Format format, int depth,
                                 Consumer<ExpandedItem> sink, ExpandStats stats) throws IOException {
        if (depth > spec.maxDepth()) {
            emit(sink, stats, sourceKey, lineage, "containers nested more than " + spec.maxDepth() + " deep");
            return;
        }
        try {
            switch (format) {
                case PDF -> pages(sourceKey, lineage, PdfPages.pageCount(file), "PDF", sink, stats);
                case TIFF -> {
                    int frames = TiffFrames.frameCount(file, spec.maxPages());
                    if (frames == 1) {
                        emit(sink, stats, sourceKey, lineage, null); // a single image, no page number
                    } else {
                        pages(sourceKey, lineage, frames, "TIFF", sink, stats);
                    }
                }
                case ZIP, TAR, TAR_GZ -> members(sourceKey, lineage, file, format, depth, sink, stats);
                default -> throw new IllegalStateException(format + " is not a container");
            }
        } catch (ArchiveRejectedException e) {
            emit(sink, stats, sourceKey, lineage, e.getMessage());
        } catch (IOException e) {
            if (lineage.member().isEmpty()) {
                throw e; // the listed file itself is unreadable: the source's problem, not this document's
            }
            emit(sink, stats, sourceKey, lineage, "cannot read: " + Problems.describe(e));
        }
    }

    private void pages(String sourceKey, Lineage lineage, int count, String kind, Consumer<ExpandedItem> sink,
                       ExpandStats stats) {
        if (count > spec.maxPages()) {
            emit(sink, stats, sourceKey, lineage, "the " + kind + " has " + (kind.equals("TIFF") ? "more than " + spec.maxPages() : count)
                    + " pages, more than source.max_pages = " + spec.maxPages());
            return;
        }
        if (count == 0) {
            emit(sink, stats, sourceKey, lineage, "the " + kind + " has no pages");
            return;
        }
        stats.document();
        for (int p = 1; p <= count; p++) {
            emit(sink, stats, sourceKey, lineage.page(p), null);
        }
    }

    private void members(String sourceKey, Lineage lineage, ByteSource file, Format format, int depth,
                         Consumer<ExpandedItem> sink, ExpandStats stats) throws IOException {
        try (Archive archive = Archive.open(format, file, spec)) {
            archive.list(member -> {
                Lineage child = lineage.child(member.name());
                if (member.rejection() != null) {
                    emit(sink, stats, sourceKey, child, member.rejection());
                    return;
                }
                if (Format.imageByName(member.name())) {
                    emit(sink, stats, sourceKey, child, null);
                    return;
                }
                Format inner;
                try {
                    inner = Format.sniff(member.head(Format.HEAD), member.name());
                    if (inner == Format.TAR_GZ) {
                        inner = Format.detect(member.source());
                    }
                } catch (IOException e) {
                    emit(sink, stats, sourceKey, child, "cannot read: " + Problems.describe(e));
                    return;
                }
                if (spec.expands(inner)) {
                    expandContainer(sourceKey, child, member.source(), inner, depth + 1, sink, stats);
                } else if (inner == Format.IMAGE || inner == Format.TIFF) {
                    emit(sink, stats, sourceKey, child, null);
                } else {
                    stats.unknown();
                    log.debug("{}: skipping {}, not an image or an expandable container", sourceKey, child.member());
                }
            }, stats);
        }
    }

    private static void emit(Consumer<ExpandedItem> sink, ExpandStats stats, String sourceKey, Lineage lineage,
                             String failure) {
        stats.item(lineage.page() != null, failure != null);
        sink.accept(new ExpandedItem(lineage.key(sourceKey), lineage, failure));
    }
}
