package io.vlmbatch.source;

import java.io.IOException;
import java.io.PushbackReader;
import java.io.Reader;

final class Utf8Bom {

    private Utf8Bom() {}

    /** The reader without a leading U+FEFF, which would otherwise glue itself to the first column name. */
    static Reader skip(Reader reader) throws IOException {
        PushbackReader in = new PushbackReader(reader, 1);
        int first = in.read();
        if (first >= 0 && first != '\uFEFF') {
            in.unread(first);
        }
        return in;
    }
}
