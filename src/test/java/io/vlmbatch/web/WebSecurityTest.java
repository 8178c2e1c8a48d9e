package io.vlmbatch.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vlmbatch.VlmBatchApplication;
import io.vlmbatch.testsupport.TestPostgres;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.CookieManager;
import java.net.HttpCookie;
import java.net.InetAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.SpringApplication;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.core.env.MutablePropertySources;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.env.SystemEnvironmentPropertySource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The web app's defences over real HTTP against a real PostgreSQL: login whenever the bind address is
 * not a loopback literal, loopback Host names only on loopback, failed logins throttled, health details
 * for logged-in users only, the same problem JSON for every error whatever the Accept header, and the
 * Content-Security-Policy and Referrer-Policy headers.
 */
class WebSecurityTest {
    static final JsonMapper JSON = JsonMapper.builder().build();
    @TempDir
    static Path tmp;
    static TestPostgres pg;

    @BeforeAll
    static void database() throws Exception {
        pg = TestPostgres.start(tmp.resolve("pg"));
        Files.createDirectories(tmp.resolve("jobs"));
    }

    @AfterAll
    static void stop() {
        pg.close();
    }

    static String[] args(String address, String... extra) {
        List<String> a = new ArrayList<>(List.of("--spring.main.web-application-type=servlet", "--server.port=0",
                "--spring.datasource.url=" + pg.jdbcUrl(), "--spring.datasource.username=" + pg.user(), "--spring.datasource.password=" + pg.password(),
                "--vlm.jobs-dir=" + tmp.resolve("jobs"), "--vlm.scheduler.enabled=false"));
        if (address != null) a.add("--server.address=" + address);
        a.addAll(Arrays.asList(extra));
        return a.toArray(String[]::new);
    }

    static ConfigurableApplicationContext start(String address, String... extra) {
        return new SpringApplication(VlmBatchApplication.class, ServeConfig.class).run(args(address, extra));
    }

    static String base(ConfigurableApplicationContext app) {
        return "http://127.0.0.1:" + app.getEnvironment().getProperty("local.server.port") + "/";
    }

    static String basic(String user, String password) {
        return "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
    }

    static HttpResponse<String> get(HttpClient http, String url, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url));
        for (int i = 0; i < headers.length; i += 2) b.header(headers[i], headers[i + 1]);
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static void refusedForWantOfAUser(org.assertj.core.api.ThrowableAssert.ThrowingCallable start, String what) {
        assertThatThrownBy(start).as(what).satisfies(e -> {
            Throwable root = e;
            while (root.getCause() != null) root = root.getCause();
            assertThat(root.getMessage()).contains("set VLM_WEB_USER and VLM_WEB_PASSWORD");
        });
    }

    @Test
    void refusesToListenOnTheNetworkWithoutAUser() {
        refusedForWantOfAUser(() -> start("0.0.0.0"), "0.0.0.0");
    }

    @Test
    void anEmptyBlankOrNamedBindAddressAlsoRequiresAUserHoweverItIsGiven() {
        // "" and "  " make the server listen on every interface; a name may resolve anywhere
        for (String address : List.of("", "   ", "localhost", "my-host.example")) {
            refusedForWantOfAUser(() -> start(address), "--server.address=\"" + address + "\"");
        }
        // the same given as environment variable (SERVER_ADDRESS) and as a system property
        SpringApplication fromEnv = new SpringApplication(VlmBatchApplication.class, ServeConfig.class);
        fromEnv.setEnvironment(new StandardEnvironment() {
            @Override
            protected void customizePropertySources(MutablePropertySources sources) {
                super.customizePropertySources(sources);
                sources.addFirst(new SystemEnvironmentPropertySource("test environment", Map.of("SERVER_ADDRESS", "")));
            }
        });
        refusedForWantOfAUser(() -> fromEnv.run(args(null)), "SERVER_ADDRESS=\"\"");
        System.setProperty("server.address", " ");
        try {
            refusedForWantOfAUser(() -> start(null), "-Dserver.address=\" \"");
        } finally {
            System.clearProperty("server.address");
        }
    }

    @Test
    void requiresLoginWhenBoundBeyondLoopback() throws Exception {
        try (ConfigurableApplicationContext app = start("0.0.0.0", "--vlm.web.user=ops", "--vlm.web.password=s3cret");
             HttpClient http = HttpClient.newHttpClient()) {
            String base = base(app);
            assertThat(get(http, base + "api/jobs", "Accept", "application/json").statusCode()).isEqualTo(401);
            assertThat(get(http, base + "api/jobs", "Authorization", basic("ops", "s3cret")).statusCode()).isEqualTo(200);
            assertThat(get(http, base + "api/jobs", "Authorization", basic("ops", "nope")).statusCode()).isEqualTo(401);
            assertThat(get(http, base + "actuator/health").statusCode()).as("health stays open for probes").isEqualTo(200);
        }
    }

    @Test
    void healthDetailsOnlyForALoggedInUserWhenLoginIsOn() throws Exception {
        try (ConfigurableApplicationContext app = start("0.0.0.0", "--vlm.web.user=ops", "--vlm.web.password=s3cret");
             HttpClient http = HttpClient.newHttpClient()) {
            HttpResponse<String> anonymous = get(http, base(app) + "actuator/health");
            assertThat(anonymous.statusCode()).isEqualTo(200);
            JsonNode a = JSON.readTree(anonymous.body());
            assertThat(a.path("status").asString()).isEqualTo("UP");
            assertThat(a.has("components")).as(anonymous.body()).isFalse();
            assertThat(anonymous.body()).doesNotContain("jdbc").doesNotContain("postgres");
            JsonNode loggedIn = JSON.readTree(get(http, base(app) + "actuator/health", "Authorization", basic("ops", "s3cret")).body());
            assertThat(loggedIn.path("components").path("db").path("status").asString()).isEqualTo("UP");
        }
    }

    @Test
    void failedLoginsAreThrottledPerClientAndPerUser() throws Exception {
        try (ConfigurableApplicationContext app = start("0.0.0.0", "--vlm.web.user=ops", "--vlm.web.password=s3cret",
                "--vlm.web.login.max-failures-per-client=5", "--vlm.web.login.max-failures-per-user=8");
             HttpClient a = client("127.0.0.1"); HttpClient b = client("127.0.0.2"); HttpClient c = client("127.0.0.3")) {
            String url = base(app) + "api/jobs";
            for (int i = 0; i < 5; i++) assertThat(get(a, url, "Authorization", basic("ops", "guess" + i)).statusCode()).isEqualTo(401);
            HttpResponse<String> held = get(a, url, "Authorization", basic("ops", "guess5"));
            assertThat(held.statusCode()).isEqualTo(429);
            assertThat(held.headers().firstValue("Retry-After")).isPresent();
            assertThat(JSON.readTree(held.body()).path("detail").asString()).contains("too many failed logins");
            assertThat(get(a, url, "Authorization", basic("ops", "s3cret")).statusCode())
                    .as("even the right password, while the client is held").isEqualTo(429);
            assertThat(get(a, url, "Authorization", basic("someone-else", "x")).statusCode())
                    .as("per client: another user name does not help").isEqualTo(429);

            assertThat(get(b, url, "Authorization", basic("ops", "s3cret")).statusCode()).as("another client is not held").isEqualTo(200);
            for (int i = 0; i < 3; i++) assertThat(get(b, url, "Authorization", basic("ops", "b" + i)).statusCode()).isEqualTo(401);
            // 8 failures against "ops" from two clients: the user is held, from any address
            assertThat(get(c, url, "Authorization", basic("ops", "s3cret")).statusCode()).as("per user").isEqualTo(429);
            assertThat(get(b, url, "Authorization", basic("other", "x")).statusCode()).as("b itself is under its limit").isEqualTo(401);
        }
    }

    static HttpClient client(String localAddress) throws IOException {
        return HttpClient.newBuilder().localAddress(InetAddress.getByName(localAddress)).build();
    }

    /** A raw HTTP/1.1 request, because HttpClient will not send a Host header of our choosing. */
    static String rawGet(int port, String host, String path) throws IOException {
        try (Socket s = new Socket("127.0.0.1", port)) {
            OutputStream out = s.getOutputStream();
            out.write(("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nAccept: */*\r\nConnection: close\r\n\r\n")
                    .getBytes(StandardCharsets.ISO_8859_1));
            out.flush();
            try (InputStream in = s.getInputStream()) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
        }
    }

    /** Raw bytes of a whole request, for request lines and headers no client library would send. */
    static String raw(int port, String request) throws IOException {
        try (Socket s = new Socket("127.0.0.1", port)) {
            OutputStream out = s.getOutputStream();
            out.write(request.getBytes(StandardCharsets.ISO_8859_1));
            out.flush();
            try (InputStream in = s.getInputStream()) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
        }
    }

    @Test
    void requestsTomcatRejectsItselfGetTheSameProblemJson() throws Exception {
        try (ConfigurableApplicationContext app = start("127.0.0.1")) {
            int port = Integer.parseInt(app.getEnvironment().getProperty("local.server.port"));
            List<String> hostile = new ArrayList<>();
            for (String host : List.of("localhost:80x", "local host", "[::1", "127.0.0.1:80:80", "a\u0000b", "-bad-.example", "local..host")) {
                hostile.add("GET /api/jobs HTTP/1.1\r\nHost: " + host + "\r\nAccept: text/html\r\nConnection: close\r\n\r\n");
            }
            hostile.add("GET /api/jobs HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n");
            hostile.add("GET /api/%zz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            hostile.add("GET /api/jobs?x=<script> HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            hostile.add("GET /api/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\nConnection: close\r\n\r\n");
            for (String request : hostile) {
                String r = raw(port, request);
                String body = r.substring(r.indexOf("\r\n\r\n") + 4);
                assertThat(r).as(request).startsWith("HTTP/1.1 400").containsIgnoringCase("content-type: application/problem+json")
                        .doesNotContainIgnoringCase("tomcat").doesNotContainIgnoringCase("<html").doesNotContain("Exception");
                JsonNode problem = JSON.readTree(body);
                assertThat(problem.path("status").asInt()).as(request).isEqualTo(400);
                assertThat(problem.path("detail").asString()).as(request).contains("malformed");
            }
            assertThat(rawGet(port, "localhost:" + port, "/api/jobs")).as("still answering").startsWith("HTTP/1.1 200");
        }
    }

    @Test
    void undecodableOrNulParametersAndBrokenMultipartBodiesAre400s() throws Exception {
        // found by bench/faults/fuzz_http.py: each of these was a 500
        try (ConfigurableApplicationContext app = start("127.0.0.1")) {
            int port = Integer.parseInt(app.getEnvironment().getProperty("local.server.port"));
            for (String path : List.of("/api/jobs?limit=%", "/api/jobs/x/runs?limit=%ff%fe", "/api/runs/1/results?q=%c0%ae%c0%ae/",
                    "/api/jobs?x=%00", "/api/jobs?%00=1", "/api/runs/1/results?page=%2")) {
                String r = rawGet(port, "localhost", path);
                assertThat(r).as(path).startsWith("HTTP/1.1 400").containsIgnoringCase("content-type: application/problem+json");
                assertThat(JSON.readTree(r.substring(r.indexOf("\r\n\r\n") + 4)).path("status").asInt()).isEqualTo(400);
            }
            String first = rawGet(port, "localhost", "/api/jobs");
            String token = first.lines().filter(l -> l.startsWith("Set-Cookie: XSRF-TOKEN=")).findFirst().orElseThrow()
                    .substring("Set-Cookie: XSRF-TOKEN=".length()).split(";")[0];
            String csrf = "X-XSRF-TOKEN: " + token + "\r\nCookie: XSRF-TOKEN=" + token + "\r\n";
            for (String[] body : List.of(new String[] {"multipart/form-data", "x"},
                    new String[] {"multipart/form-data; boundary=b", "--b\r\nnonsense"},
                    new String[] {"multipart/form-data; boundary=b",
                            "--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"<img src=x>\"';.png\"\r\n\r\nx\r\n--b--\r\n"})) {
                String r = raw(port, "POST /api/playground/sessions HTTP/1.1\r\nHost: localhost\r\n" + csrf + "Content-Type: " + body[0]
                        + "\r\nContent-Length: " + body[1].length() + "\r\nConnection: close\r\n\r\n" + body[1]);
                assertThat(r).as(body[1]).matches("(?s)HTTP/1.1 4\\d\\d .*").containsIgnoringCase("content-type: application/problem+json");
            }
            assertThat(rawGet(port, "localhost", "/api/jobs?limit=5")).as("still answering").startsWith("HTTP/1.1 200");
        }
    }

    @Test
    void anUploadOverTheLimitIsA413ThatAClientSendingItWholeCanRead() throws Exception {
        // found by bench/faults/fuzz_http.py: a 25 MB upload ended in a broken pipe, not the 413. Browsers and Java's
        // HttpClient send the whole body before reading; a server that answers and closes early resets them.
        try (ConfigurableApplicationContext app = start("127.0.0.1");
             HttpClient http = HttpClient.newBuilder().cookieHandler(new CookieManager()).build()) {
            String base = base(app);
            get(http, base + "api/jobs");
            String token = ((CookieManager) http.cookieHandler().orElseThrow()).getCookieStore().getCookies().stream()
                    .filter(k -> k.getName().equals("XSRF-TOKEN")).map(HttpCookie::getValue).findFirst().orElseThrow();
            byte[] image = new byte[25 * 1024 * 1024];
            String boundary = "b0undary";
            HttpRequest upload = HttpRequest.newBuilder(URI.create(base + "api/playground/sessions"))
                    .header("X-XSRF-TOKEN", token).header("Content-Type", "multipart/form-data; boundary=" + boundary)
                    .POST(WebApiIT.multipart(boundary, "big.png", "image/png", image)).build();
            HttpResponse<String> r = http.send(upload, HttpResponse.BodyHandlers.ofString());
            assertThat(r.statusCode()).as(r.body()).isEqualTo(413);
            assertThat(r.headers().firstValue("Content-Type").orElse("")).startsWith("application/problem+json");
            assertThat(JSON.readTree(r.body()).path("detail").asString()).contains("20MB");
            assertThat(get(http, base + "api/jobs").statusCode()).as("still answering").isEqualTo(200);
        }
    }

    @Test
    void anHttp09RequestGetsNothing() throws Exception {
        // HTTP/0.9 has no status line and no headers: whatever the app answered would reach the client as a bare body
        // with none of the headers that make the browser treat it safely. Found by bench/faults/fuzz_http.py.
        try (ConfigurableApplicationContext app = start("127.0.0.1")) {
            int port = Integer.parseInt(app.getEnvironment().getProperty("local.server.port"));
            for (String path : List.of("/api/jobs", "/", "/actuator/health", "/app.js")) {
                assertThat(raw(port, "GET " + path + "\r\n")).as(path).isEmpty();
            }
            assertThat(rawGet(port, "localhost", "/api/jobs")).as("HTTP/1.1 still answered").startsWith("HTTP/1.1 200");
        }
    }

    @Test
    void onLoopbackOnlyLoopbackHostNamesAreAnswered() throws Exception {
        try (ConfigurableApplicationContext app = start("127.0.0.1")) {
            int port = Integer.parseInt(app.getEnvironment().getProperty("local.server.port"));
            for (String host : List.of("evil.example", "evil.example:" + port, "127.0.0.1.evil.example", "localhost.evil.example",
                    "10.0.0.1", "[::2]:" + port)) {
                String r = rawGet(port, host, "/api/jobs");
                assertThat(r).as("Host: " + host).startsWith("HTTP/1.1 403").contains("application/problem+json").doesNotContain("[]");
            }
            for (String host : List.of("localhost:80x", "", "local host")) { // malformed: Tomcat itself answers 400
                assertThat(rawGet(port, host, "/api/jobs")).as("Host: " + host).matches("(?s)HTTP/1.1 40[03].*").doesNotContain("[]");
            }
            for (String host : List.of("127.0.0.1:" + port, "localhost:" + port, "LOCALHOST", "[::1]:" + port, "app.localhost:" + port)) {
                assertThat(rawGet(port, host, "/api/jobs")).as("Host: " + host).startsWith("HTTP/1.1 200");
            }
        }
        try (ConfigurableApplicationContext app = start("127.0.0.1", "--vlm.web.allowed-hosts=vlm.internal")) {
            int port = Integer.parseInt(app.getEnvironment().getProperty("local.server.port"));
            assertThat(rawGet(port, "vlm.internal", "/api/jobs")).startsWith("HTTP/1.1 200");
            assertThat(rawGet(port, "evil.example", "/api/jobs")).startsWith("HTTP/1.1 403");
        }
    }

    @Test
    void errorsAreTheSameProblemJsonWhateverTheAcceptHeader() throws Exception {
        CookieManager cookies = new CookieManager();
        try (ConfigurableApplicationContext app = start("127.0.0.1");
             HttpClient http = HttpClient.newBuilder().cookieHandler(cookies).build()) {
            String base = base(app);
            get(http, base + "api/jobs"); // the XSRF-TOKEN cookie
            String token = cookies.getCookieStore().getCookies().stream().filter(c -> c.getName().equals("XSRF-TOKEN"))
                    .map(HttpCookie::getValue).findFirst().orElseThrow();
            record Case(String method, String path, String body, boolean csrf, int status) {}
            List<Case> cases = List.of(
                    new Case("GET", "api/runs/abc", null, false, 400),                       // wrong type of a path variable
                    new Case("GET", "api/runs/99999999", null, false, 404),                  // our own ApiException
                    new Case("GET", "api/runs/1/results?page=x", null, false, 400),
                    new Case("GET", "no/such/page", null, false, 404),                       // outside the API: the error page
                    new Case("DELETE", "api/jobs", null, true, 405),
                    new Case("POST", "api/jobs/x/trigger", null, false, 403),                // no CSRF token
                    new Case("POST", "api/playground/sessions/x/ask", "{\"question\": [1, {\"a\"", true, 400), // broken JSON
                    new Case("POST", "api/playground/sessions/x/ask", "{\"maxTokens\": \"many\"}", true, 400));
            for (Case c : cases) {
                String first = null;
                for (String accept : Stream.of("application/json", "text/html", "text/event-stream", "*/*", "application/xml", null).toList()) {
                    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + c.path()))
                            .method(c.method(), c.body() == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(c.body()));
                    if (accept != null) b.header("Accept", accept);
                    if (c.body() != null) b.header("Content-Type", "application/json");
                    if (c.csrf()) b.header("X-XSRF-TOKEN", token);
                    HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
                    String what = c.method() + " " + c.path() + " Accept: " + accept + " -> " + r.body();
                    assertThat(r.statusCode()).as(what).isEqualTo(c.status());
                    assertThat(r.headers().firstValue("Content-Type")).as(what).hasValueSatisfying(t -> assertThat(t).startsWith("application/problem+json"));
                    JsonNode p = JSON.readTree(r.body());
                    assertThat(p.path("status").asInt()).as(what).isEqualTo(c.status());
                    assertThat(p.path("title").asString()).as(what).isNotBlank();
                    assertThat(p.path("detail").asString()).as(what).isNotBlank();
                    assertThat(r.body()).as(what).doesNotContainIgnoringCase("exception").doesNotContain("java.").doesNotContain("io.vlmbatch")
                            .doesNotContain("tools.jackson").doesNotContain("springframework").doesNotContain("\tat ");
                    if (first == null) first = r.body();
                    else assertThat(r.body()).as(what).isEqualTo(first);
                }
            }
        }
    }

    @Test
    void pagesCarryAContentSecurityPolicyWithoutInlineScriptAndAReferrerPolicy() throws Exception {
        try (ConfigurableApplicationContext app = start("127.0.0.1"); HttpClient http = HttpClient.newHttpClient()) {
            for (String path : List.of("", "index.html", "app.js", "api/jobs")) {
                HttpResponse<String> r = get(http, base(app) + path);
                assertThat(r.statusCode()).isEqualTo(200);
                String csp = r.headers().firstValue("Content-Security-Policy").orElse("");
                assertThat(csp).as(path).contains("script-src 'self'").contains("style-src 'self'").contains("object-src 'none'")
                        .contains("frame-ancestors 'none'").doesNotContain("unsafe-inline").doesNotContain("unsafe-eval");
                assertThat(r.headers().firstValue("Referrer-Policy")).as(path).hasValue("same-origin");
            }
            String index = get(http, base(app)).body();
            assertThat(index).doesNotContainPattern("<script(?![^>]*\\bsrc=)").doesNotContainPattern("\\son[a-z]+=").doesNotContain("style=");
        }
    }
}
