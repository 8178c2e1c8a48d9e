package io.vlmbatch.archive;

/**
 * Member paths are names only, never paths to write to: {@code ..}, leading slashes and odd bytes are
 * kept as they are, except control characters (NUL cannot be stored in PostgreSQL text, and line
 * breaks would split log lines), which become U+FFFD. Listing and lookup clean the same way, so a
 * member is found again under its cleaned name.
 */
final class MemberNames {

    private MemberNames() {}

    static String clean(String raw) {
        StringBuilder b = null;
        for (int i = 0; i < raw.length(); i++) {
            char c = raw.charAt(i);
            if (c < 0x20 || c == 0x7F) {
                if (b == null) {
                    b = new StringBuilder(raw.length()).append(raw, 0, i);
                }
                b.append('\uFFFD');
            } else if (b != null) {
                b.append(c);
            }
        }
        return b == null ? raw : b.toString();
    }
}
