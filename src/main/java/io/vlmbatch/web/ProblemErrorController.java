package io.vlmbatch.web;

import jakarta.servlet.RequestDispatcher;
import jakarta.servlet.http.HttpServletRequest;
import org.springframework.boot.webmvc.error.ErrorController;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

/**
 * The error page (what the servlet container shows for a 404 outside the API, a rejected login, a CSRF
 * failure…) as the same problem JSON as the API's errors, in place of Spring Boot's HTML or JSON
 * variants that depend on the Accept header.
 */
@RestController
class ProblemErrorController implements ErrorController {

    @RequestMapping("${server.error.path:/error}")
    ResponseEntity<Object> error(HttpServletRequest request) {
        Object code = request.getAttribute(RequestDispatcher.ERROR_STATUS_CODE);
        HttpStatus status = code instanceof Integer i && HttpStatus.resolve(i) != null ? HttpStatus.resolve(i) : HttpStatus.INTERNAL_SERVER_ERROR;
        Object uri = request.getAttribute(RequestDispatcher.ERROR_REQUEST_URI);
        String detail = switch (status) {
            case NOT_FOUND -> "nothing here" + (uri == null ? "" : ": " + uri);
            case UNAUTHORIZED -> "log in first (this server requires a user and password)";
            case FORBIDDEN -> "forbidden (a missing or stale CSRF token, or no permission)";
            case INTERNAL_SERVER_ERROR -> "internal error (the server log has the details)";
            default -> status.getReasonPhrase();
        };
        return ApiErrors.problem(status, detail);
    }
}
