package io.vlmbatch.web;

import java.time.Clock;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.springframework.beans.factory.config.BeanFactoryPostProcessor;
import org.apache.catalina.core.StandardHost;
import org.springframework.boot.tomcat.TomcatContextCustomizer;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.core.Ordered;
import org.springframework.core.env.ConfigurableEnvironment;
import org.springframework.core.env.Environment;
import org.springframework.core.env.MapPropertySource;
import org.springframework.security.config.Customizer;
import org.springframework.security.config.annotation.web.builders.HttpSecurity;
import org.springframework.security.core.userdetails.User;
import org.springframework.security.core.userdetails.UserDetailsService;
import org.springframework.security.crypto.factory.PasswordEncoderFactories;
import org.springframework.security.crypto.password.PasswordEncoder;
import org.springframework.security.provisioning.InMemoryUserDetailsManager;
import org.springframework.security.web.SecurityFilterChain;
import org.springframework.security.web.header.writers.ReferrerPolicyHeaderWriter;

/**
 * Bound to a loopback address literal (the default, 127.0.0.1) the app trusts whoever reaches it, but
 * answers only to loopback Host names (DNS rebinding); bound to anything else — a name, 0.0.0.0, an
 * empty or blank address — it requires login as the one configured user (VLM_WEB_USER /
 * VLM_WEB_PASSWORD, i.e. vlm.web.user / vlm.web.password), and refuses to start without one. A password
 * set while on loopback turns login on there too. With login on, failed logins are throttled and health
 * details are shown to logged-in users only. Always: CSRF protection (the UI sends the XSRF-TOKEN cookie
 * back as a header), a Content-Security-Policy that allows no inline script or style, and a
 * Referrer-Policy.
 */
@Configuration(proxyBeanMethods = false)
@Import(ProblemErrorController.class)
class SecurityConfig {
    static final String CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:;"
            + " connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

    /**
     * Only an address literal of the loopback network counts: a host name could resolve elsewhere, and an
     * empty address makes the server listen on every interface.
     */
    static boolean loopback(String address) {
        if (address == null) return false;
        String a = address.strip();
        if (a.startsWith("[") && a.endsWith("]")) a = a.substring(1, a.length() - 1);
        if (a.matches("127(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}")) return true;
        if (!a.matches("[0-9A-Fa-f:.]+") || !a.contains(":")) return false;
        try {
            return java.net.InetAddress.getByName(a).isLoopbackAddress(); // an IPv6 literal: no lookup is made
        } catch (java.net.UnknownHostException e) {
            return false;
        }
    }

    static boolean loginRequired(Environment env) {
        String address = env.getProperty("server.address");
        String password = env.getProperty("vlm.web.password");
        boolean hasUser = password != null && !password.isBlank();
        boolean exposed = !loopback(address) || separateManagementPortExposed(env);
        if (exposed && !hasUser) {
            String shown = address == null ? "every interface" : address.isBlank() ? "\"" + address + "\" (every interface)" : address;
            throw new IllegalStateException("serve is bound to " + shown + ", not a loopback address: set VLM_WEB_USER and"
                    + " VLM_WEB_PASSWORD so that login is required (or bind to 127.0.0.1)");
        }
        return hasUser;
    }

    /** Actuator on a port of its own listens on every interface unless management.server.address says otherwise. */
    private static boolean separateManagementPortExposed(Environment env) {
        String port = env.getProperty("management.server.port");
        if (port == null || port.isBlank() || port.strip().equals(env.getProperty("server.port"))) return false;
        return !loopback(env.getProperty("management.server.address"));
    }

    /**
     * Health details (database, inference endpoint) only to logged-in users when login is on; to everyone
     * who can reach a loopback-only server otherwise. Runs before the health endpoint's settings are read;
     * a value the user set explicitly still wins.
     */
    @Bean
    static BeanFactoryPostProcessor healthDetailsFollowLogin() {
        return bf -> {
            ConfigurableEnvironment env = bf.getBean(ConfigurableEnvironment.class);
            String show = loginRequired(env) ? "when-authorized" : "always";
            env.getPropertySources().addLast(new MapPropertySource("vlm-batch health details",
                    Map.of("management.endpoint.health.show-details", show)));
        };
    }

    @Bean
    SecurityFilterChain filterChain(HttpSecurity http, Environment env) throws Exception {
        http.csrf(c -> c.spa());
        http.headers(h -> h
                .contentSecurityPolicy(c -> c.policyDirectives(CONTENT_SECURITY_POLICY))
                .referrerPolicy(r -> r.policy(ReferrerPolicyHeaderWriter.ReferrerPolicy.SAME_ORIGIN)));
        if (loginRequired(env)) {
            http.authorizeHttpRequests(a -> a
                            .requestMatchers("/login", "/error", "/actuator/health", "/actuator/health/**").permitAll()
                            .anyRequest().authenticated())
                    .formLogin(Customizer.withDefaults())
                    .httpBasic(Customizer.withDefaults());
        } else {
            http.authorizeHttpRequests(a -> a.anyRequest().permitAll());
        }
        return http.build();
    }

    /** Ahead of Spring Security, so that a rebound page gets nothing, not even a CSRF cookie. */
    @Bean
    FilterRegistrationBean<LoopbackHostFilter> loopbackHostFilter(Environment env) {
        Set<String> extra = Arrays.stream(env.getProperty("vlm.web.allowed-hosts", "").split(","))
                .map(s -> s.strip().toLowerCase(java.util.Locale.ROOT)).filter(s -> !s.isEmpty()).collect(Collectors.toSet());
        FilterRegistrationBean<LoopbackHostFilter> r = new FilterRegistrationBean<>(new LoopbackHostFilter(extra));
        r.setOrder(Ordered.HIGHEST_PRECEDENCE + 10);
        r.setEnabled(loopback(env.getProperty("server.address")));
        return r;
    }

    /** After the Host check, before Spring Security (whose filters read parameters too). */
    @Bean
    FilterRegistrationBean<RequestTextFilter> requestTextFilter() {
        FilterRegistrationBean<RequestTextFilter> r = new FilterRegistrationBean<>(new RequestTextFilter());
        r.setOrder(Ordered.HIGHEST_PRECEDENCE + 15);
        return r;
    }

    @Bean
    FilterRegistrationBean<LoginThrottle> loginThrottle(Environment env) {
        LoginThrottle throttle = new LoginThrottle(env.getProperty("vlm.web.login.max-failures-per-client", Integer.class, 5),
                env.getProperty("vlm.web.login.max-failures-per-user", Integer.class, 20),
                env.getProperty("vlm.web.login.failure-window", Duration.class, Duration.ofMinutes(15)), Clock.systemUTC());
        FilterRegistrationBean<LoginThrottle> r = new FilterRegistrationBean<>(throttle);
        r.setOrder(Ordered.HIGHEST_PRECEDENCE + 20);
        r.setEnabled(loginRequired(env));
        return r;
    }

    /** Requests Tomcat rejects itself (a malformed Host header...) get the problem JSON too, not its HTML page. */
    @Bean
    TomcatContextCustomizer problemJsonForTomcatErrors() {
        return context -> {
            if (context.getParent() instanceof StandardHost host) host.setErrorReportValveClass(ProblemErrorReportValve.class.getName());
        };
    }

    @Bean
    PasswordEncoder passwordEncoder() {
        return PasswordEncoderFactories.createDelegatingPasswordEncoder();
    }

    @Bean
    UserDetailsService users(Environment env, PasswordEncoder encoder) {
        String user = env.getProperty("vlm.web.user", "admin");
        String password = env.getProperty("vlm.web.password");
        if (password == null || password.isBlank()) return new InMemoryUserDetailsManager();
        return new InMemoryUserDetailsManager(User.withUsername(user).password(encoder.encode(password)).roles("USER").build());
    }
}
