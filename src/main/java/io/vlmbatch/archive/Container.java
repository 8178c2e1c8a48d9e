package io.vlmbatch.archive;

import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** The container types a job can ask to expand ({@code source.expand}); TAR covers TAR.GZ too. */
public enum Container {
    PDF, TIFF, ZIP, TAR;

    public static Set<Container> all() {
        return EnumSet.allOf(Container.class);
    }

    /**
     * @throws IllegalArgumentException naming the unknown value and the accepted ones
     */
    public static Set<Container> parse(List<String> names) {
        Set<Container> set = EnumSet.noneOf(Container.class);
        for (String name : names) {
            String n = name == null ? "" : name.strip().toUpperCase(Locale.ROOT);
            if (n.equals("TIF")) {
                n = "TIFF";
            }
            try {
                set.add(Container.valueOf(n));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("unknown container type '" + name + "' (expected pdf, tiff, zip or tar)");
            }
        }
        return set;
    }
}
