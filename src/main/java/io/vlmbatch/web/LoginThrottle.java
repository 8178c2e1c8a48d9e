package io.vlmbatch.web;

import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Base64;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import org.springframework.http.HttpStatus;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * Slows down password guessing: a client address with too many failed logins within the window, or a
 * user name that many guesses were made against from any number of addresses, gets 429 (with
 * Retry-After) for every further login attempt until its oldest failure leaves the window. A login
 * attempt is a request carrying HTTP Basic credentials or the login form's POST; a success clears
 * the client's count (not the user's: a script logging in every minute would otherwise hand a guesser
 * a fresh allowance each time). Requests of a session already logged in are never held up.
 */
final class LoginThrottle extends OncePerRequestFilter {
    private static final int MAX_KEYS = 10_000; // bounds memory against a flood of made-up user names

    private final int perClient;
    private final int perUser;
    private final Duration window;
    private final Clock clock;
    private final Map<String, Deque<Long>> failures = new LinkedHashMap<>(256, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Deque<Long>> eldest) {
            return size() > MAX_KEYS;
        }
    };

    LoginThrottle(int perClient, int perUser, Duration window, Clock clock) {
        if (perClient < 1 || perUser < 1) throw new IllegalArgumentException("the login failure limits must be at least 1");
        if (window.isNegative() || window.isZero()) throw new IllegalArgumentException("the login throttle window must be positive");
        this.perClient = perClient;
        this.perUser = perUser;
        this.window = window;
        this.clock = clock;
    }

    /** The user name a request tries to log in as, or null when it is no login attempt. */
    static String attemptedUser(HttpServletRequest request) {
        String auth = request.getHeader("Authorization");
        if (auth != null && auth.regionMatches(true, 0, "Basic ", 0, 6)) {
            try {
                String pair = new String(Base64.getDecoder().decode(auth.substring(6).strip()), StandardCharsets.UTF_8);
                int colon = pair.indexOf(':');
                return colon < 0 ? pair : pair.substring(0, colon);
            } catch (IllegalArgumentException e) {
                return "";
            }
        }
        if ("POST".equals(request.getMethod()) && "/login".equals(request.getServletPath())) {
            String user = request.getParameter("username");
            return user == null ? "" : user;
        }
        return null;
    }

    private static String userKey(String user) {
        String u = user.toLowerCase(Locale.ROOT);
        return "user " + (u.length() > 200 ? u.substring(0, 200) : u);
    }

    /** How long the client or the user must wait; zero when it may try. */
    synchronized Duration wait(String client, String user) {
        long now = clock.millis();
        long until = Math.max(blockedUntil("client " + client, perClient, now), blockedUntil(userKey(user), perUser, now));
        return until <= now ? Duration.ZERO : Duration.ofMillis(until - now);
    }

    private long blockedUntil(String key, int limit, long now) {
        Deque<Long> d = failures.get(key);
        if (d == null) return 0;
        while (!d.isEmpty() && d.peekFirst() <= now - window.toMillis()) d.pollFirst();
        if (d.isEmpty()) {
            failures.remove(key);
            return 0;
        }
        // the failure that must leave the window before one more try is allowed
        return d.size() < limit ? 0 : d.stream().skip(d.size() - limit).findFirst().orElseThrow() + window.toMillis();
    }

    synchronized void failed(String client, String user) {
        long now = clock.millis();
        for (String key : new String[] {"client " + client, userKey(user)}) {
            Deque<Long> d = failures.computeIfAbsent(key, k -> new ArrayDeque<>());
            d.addLast(now);
            while (d.size() > Math.max(perClient, perUser)) d.pollFirst();
        }
    }

    synchronized void succeeded(String client) {
        failures.remove("client " + client);
    }

    @Override
    protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
            throws ServletException, IOException {
        String user = attemptedUser(request);
        if (user == null) {
            chain.doFilter(request, response);
            return;
        }
        String client = request.getRemoteAddr();
        Duration wait = wait(client, user);
        if (!wait.isZero()) {
            response.setHeader("Retry-After", Long.toString(Math.max(1, (wait.toMillis() + 999) / 1000)));
            ApiErrors.write(response, HttpStatus.TOO_MANY_REQUESTS, "too many failed logins: try again in "
                    + Math.max(1, (wait.toMillis() + 999) / 1000) + " s", null);
            return;
        }
        chain.doFilter(request, response);
        if (rejected(request, response)) failed(client, user);
        else succeeded(client);
    }

    /** Basic credentials that fail get 401; the login form's failure redirects to /login?error. */
    private static boolean rejected(HttpServletRequest request, HttpServletResponse response) {
        if (response.getStatus() == HttpServletResponse.SC_UNAUTHORIZED) return true;
        String location = response.getHeader("Location");
        return "POST".equals(request.getMethod()) && "/login".equals(request.getServletPath())
                && (location == null || location.contains("?error"));
    }

    @Override
    protected boolean shouldNotFilterErrorDispatch() {
        return true;
    }
}
