package io.vlmbatch.web;

import io.vlmbatch.image.ImagePreparer;
import io.vlmbatch.image.ImageRejectedException;
import io.vlmbatch.image.PreparedImage;
import io.vlmbatch.image.ResizeSpec;
import io.vlmbatch.inference.ChatRequest.Turn;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Conversations of the playground: one uploaded image (checked and resized by the pipeline's
 * ImagePreparer, exactly as a batch run would send it) and the questions and answers so far. Kept in
 * memory, the oldest dropped beyond a bound or after an idle hour.
 */
public final class PlaygroundSessions {
    public static final class Session {
        final String id;
        final String fileName;
        final PreparedImage image;
        final List<Turn> turns = new ArrayList<>();
        volatile Instant lastUsed = Instant.now();

        Session(String id, String fileName, PreparedImage image) {
            this.id = id;
            this.fileName = fileName;
            this.image = image;
        }

        public String id() { return id; }
        public String fileName() { return fileName; }
        public PreparedImage image() { return image; }

        public synchronized List<Turn> turns() { return List.copyOf(turns); }

        synchronized void add(Turn t) { turns.add(t); }
    }

    private static final int MAX_SESSIONS = 64;
    private static final Duration IDLE = Duration.ofHours(1);
    private final SecureRandom random = new SecureRandom();
    private final ImagePreparer preparer;
    private final Map<String, Session> sessions = new LinkedHashMap<>();

    public PlaygroundSessions(ResizeSpec resize) {
        this.preparer = new ImagePreparer(resize);
    }

    /** @throws ImageRejectedException when the bytes are not an image we can decode (the reason says why) */
    public Session create(String fileName, byte[] bytes) throws ImageRejectedException {
        PreparedImage image = preparer.prepare(bytes, fileName);
        byte[] id = new byte[12];
        random.nextBytes(id);
        Session s = new Session(HexFormat.of().formatHex(id), fileName, image);
        synchronized (sessions) {
            Instant cutoff = Instant.now().minus(IDLE);
            sessions.values().removeIf(x -> x.lastUsed.isBefore(cutoff));
            while (sessions.size() >= MAX_SESSIONS) sessions.remove(sessions.keySet().iterator().next());
            sessions.put(s.id, s);
        }
        return s;
    }

    public Optional<Session> get(String id) {
        synchronized (sessions) {
            Session s = sessions.get(id);
            if (s != null) s.lastUsed = Instant.now();
            return Optional.ofNullable(s);
        }
    }
}
