package io.vlmbatch.web;

import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Locale;
import java.util.Set;
import org.springframework.http.HttpStatus;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * While the app is bound to loopback without login, any page the user's browser opens could reach it by
 * DNS rebinding (a hostile name that first resolves to the attacker, then to 127.0.0.1): the browser then
 * sends that name as Host. Only loopback names are answered; others get a 403 before anything runs.
 * Names a local reverse proxy passes on can be added with vlm.web.allowed-hosts.
 */
final class LoopbackHostFilter extends OncePerRequestFilter {
    private final Set<String> extra;

    LoopbackHostFilter(Set<String> extraHosts) {
        this.extra = extraHosts;
    }

    static boolean loopbackName(String host) {
        String h = host.toLowerCase(Locale.ROOT);
        if (h.endsWith(".")) h = h.substring(0, h.length() - 1);
        return h.equals("localhost") || h.endsWith(".localhost") || h.equals("[::1]")
                || h.matches("127(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}");
    }

    /** The host part of a Host header ("name", "name:port", "[v6]:port"); null when it is malformed. */
    static String hostPart(String header) {
        String h = header.strip();
        if (h.startsWith("[")) {
            int end = h.indexOf(']');
            if (end < 0) return null;
            String rest = h.substring(end + 1);
            return rest.isEmpty() || rest.matches(":\\d{1,5}") ? h.substring(0, end + 1) : null;
        }
        int colon = h.indexOf(':');
        if (colon >= 0) {
            if (!h.substring(colon).matches(":\\d{1,5}")) return null;
            h = h.substring(0, colon);
        }
        return h;
    }

    @Override
    protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
            throws ServletException, IOException {
        String header = request.getHeader("Host");
        // HTTP/1.1 clients always send Host, browsers included; a request without one cannot come from a rebound page
        if (header != null) {
            String host = hostPart(header);
            if (host == null || !(loopbackName(host) || extra.contains(host.toLowerCase(Locale.ROOT)))) {
                ApiErrors.write(response, HttpStatus.FORBIDDEN, "this server is bound to loopback and answers only to localhost or"
                        + " 127.0.0.1, not to the Host name given (a local reverse proxy's name can be allowed with vlm.web.allowed-hosts)", null);
                return;
            }
        }
        chain.doFilter(request, response);
    }

    @Override
    protected boolean shouldNotFilterErrorDispatch() {
        return true;
    }
}
