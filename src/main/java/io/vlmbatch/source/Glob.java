package io.vlmbatch.source;

import java.util.regex.Pattern;

/**
 * A glob over '/'-separated relative paths (file paths under a folder, S3 keys under a prefix).
 * {@code *} and {@code ?} stay within one path segment, {@code **} crosses segments ({@code **}{@code /}
 * also matches zero segments), {@code [abc]}/{@code [!abc]} are character classes and {@code {a,b}}
 * alternatives. A pattern without '/' is matched against the last segment (the file name), as in
 * .gitignore, so {@code *.jpg} finds JPEGs at any depth.
 *
 * <p>Written here rather than taken from {@code FileSystem.getPathMatcher} because S3 keys are not
 * file-system paths (they may hold "//", trailing '/' or names the platform rejects).
 */
public final class Glob {

    private final String pattern;
    private final Pattern regex;
    private final boolean nameOnly;

    private Glob(String pattern, Pattern regex, boolean nameOnly) {
        this.pattern = pattern;
        this.regex = regex;
        this.nameOnly = nameOnly;
    }

    public static Glob compile(String pattern) {
        if (pattern == null || pattern.isBlank()) {
            throw new SourceException("empty glob pattern");
        }
        String p = pattern.strip();
        boolean nameOnly = p.indexOf('/') < 0;
        if (p.startsWith("/")) {
            p = p.substring(1); // "/a/*.jpg" is anchored at the root, which relative paths already are
        }
        return new Glob(pattern, Pattern.compile(toRegex(p, pattern)), nameOnly);
    }

    public boolean matches(String relativePath) {
        String subject = relativePath;
        if (nameOnly) {
            subject = relativePath.substring(relativePath.lastIndexOf('/') + 1);
        }
        return regex.matcher(subject).matches();
    }

    @Override
    public String toString() {
        return pattern;
    }

    private static String toRegex(String glob, String original) {
        StringBuilder re = new StringBuilder();
        int braces = 0;
        int i = 0;
        while (i < glob.length()) {
            char c = glob.charAt(i);
            switch (c) {
                case '*' -> {
                    if (i + 1 < glob.length() && glob.charAt(i + 1) == '*') {
                        boolean slashFollows = i + 2 < glob.length() && glob.charAt(i + 2) == '/';
                        if (slashFollows) {
                            re.append("(?:.*/)?");
                            i += 3;
                        } else {
                            re.append(".*");
                            i += 2;
                        }
                        continue;
                    }
                    re.append("[^/]*");
                }
                case '?' -> re.append("[^/]");
                case '[' -> {
                    int close = glob.indexOf(']', i + 2);
                    if (close < 0) {
                        throw new SourceException("bad glob '" + original + "': '[' without a closing ']'");
                    }
                    String body = glob.substring(i + 1, close);
                    re.append('[');
                    if (body.startsWith("!")) {
                        re.append('^');
                        body = body.substring(1);
                    }
                    for (char b : body.toCharArray()) {
                        if (b == '\\' || b == '[' || b == ']' || b == '&' || b == '^') {
                            re.append('\\');
                        }
                        re.append(b);
                    }
                    re.append(']');
                    i = close + 1;
                    continue;
                }
                case '{' -> {
                    braces++;
                    re.append("(?:");
                }
                case '}' -> {
                    if (braces == 0) {
                        throw new SourceException("bad glob '" + original + "': '}' without '{'");
                    }
                    braces--;
                    re.append(')');
                }
                case ',' -> re.append(braces > 0 ? "|" : ",");
                case '\\' -> {
                    if (i + 1 < glob.length()) {
                        re.append(Pattern.quote(String.valueOf(glob.charAt(i + 1))));
                        i += 2;
                        continue;
                    }
                    re.append("\\\\");
                }
                default -> re.append(Pattern.quote(String.valueOf(c)));
            }
            i++;
        }
        if (braces != 0) {
            throw new SourceException("bad glob '" + original + "': '{' without '}'");
        }
        return re.toString();
    }
}
