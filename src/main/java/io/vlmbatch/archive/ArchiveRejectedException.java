package io.vlmbatch.archive;

import java.io.IOException;

/** Input that is refused, with the reason to record for the page, member or document. */
public class ArchiveRejectedException extends IOException {

    public ArchiveRejectedException(String reason) {
        super(reason);
    }

    public ArchiveRejectedException(String reason, Throwable cause) {
        super(reason, cause);
    }
}
