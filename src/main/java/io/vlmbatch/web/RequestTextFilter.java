package io.vlmbatch.web;

import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Locale;
import java.util.Map;
import org.apache.tomcat.util.http.InvalidParameterException;
import org.springframework.http.HttpStatus;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * Query and form parameters must be text: percent-encoding that does not decode to UTF-8 (a lone "%",
 * "%ff") would otherwise surface deep in a controller or a security filter as a 500, and a NUL character
 * reaches PostgreSQL, which refuses it in text. Both are a 400 here, before anything else reads them.
 * Multipart bodies are left to Spring's parser (ApiErrors answers their errors).
 * An HTTP/0.9 request (a request line without a version, which Tomcat still serves) gets nothing at all: its
 * answer would be a bare body, with no status and none of the headers that tell a browser how to treat it.
 */
final class RequestTextFilter extends OncePerRequestFilter {

    @Override
    protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
            throws ServletException, IOException {
        if (request.getProtocol() == null || request.getProtocol().isEmpty()) return;   // Tomcat's mark of HTTP/0.9
        String type = request.getContentType();
        if (type == null || !type.toLowerCase(Locale.ROOT).startsWith("multipart/")) {
            String problem;
            try {
                problem = nulIn(request.getParameterMap());
            } catch (InvalidParameterException e) {
                problem = "a query or form parameter is not valid percent-encoded UTF-8";
            }
            if (problem != null) {
                ApiErrors.write(response, HttpStatus.BAD_REQUEST, problem, null);
                return;
            }
        }
        chain.doFilter(request, response);
    }

    private static String nulIn(Map<String, String[]> params) {
        for (Map.Entry<String, String[]> e : params.entrySet()) {
            if (e.getKey().indexOf('\0') >= 0) return "a parameter name holds a NUL character";
            for (String v : e.getValue()) {
                if (v != null && v.indexOf('\0') >= 0) return "parameter " + printable(e.getKey()) + " holds a NUL character";
            }
        }
        return null;
    }

    private static String printable(String name) {
        String s = name.replaceAll("[^\\p{Alnum}_.-]", "?");
        return s.length() > 40 ? s.substring(0, 40) + "…" : s;
    }
}
