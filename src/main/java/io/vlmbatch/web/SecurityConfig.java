package io.vlmbatch.web;

import java.net.InetAddress;
import java.net.UnknownHostException;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;
import org.springframework.security.config.Customizer;
import org.springframework.security.config.annotation.web.builders.HttpSecurity;
import org.springframework.security.core.userdetails.User;
import org.springframework.security.core.userdetails.UserDetailsService;
import org.springframework.security.crypto.factory.PasswordEncoderFactories;
import org.springframework.security.crypto.password.PasswordEncoder;
import org.springframework.security.provisioning.InMemoryUserDetailsManager;
import org.springframework.security.web.SecurityFilterChain;

/**
 * Bound to loopback (the default) the app trusts whoever reaches it; bound to any other address it
 * requires login as the one configured user (VLM_WEB_USER / VLM_WEB_PASSWORD, i.e. vlm.web.user /
 * vlm.web.password), and refuses to start without one. A password set while on loopback turns login on
 * there too. CSRF protection is on in both cases (the UI sends the XSRF-TOKEN cookie back as a header).
 */
@Configuration(proxyBeanMethods = false)
class SecurityConfig {

    static boolean loopback(String address) {
        try {
            return InetAddress.getByName(address).isLoopbackAddress();
        } catch (UnknownHostException e) {
            return false;
        }
    }

    static boolean loginRequired(Environment env) {
        String address = env.getProperty("server.address", "127.0.0.1");
        String password = env.getProperty("vlm.web.password");
        boolean hasUser = password != null && !password.isBlank();
        if (!loopback(address) && !hasUser) {
            throw new IllegalStateException("serve is bound to " + address + ", reachable from other machines: set VLM_WEB_USER and"
                    + " VLM_WEB_PASSWORD so that login is required (or bind to 127.0.0.1)");
        }
        return hasUser;
    }

    @Bean
    SecurityFilterChain filterChain(HttpSecurity http, Environment env) throws Exception {
        http.csrf(c -> c.spa());
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
