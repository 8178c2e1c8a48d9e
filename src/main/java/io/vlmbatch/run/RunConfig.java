package io.vlmbatch.run;

import io.vlmbatch.store.RunStore;
import java.time.Duration;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;

/**
 * Run ownership of this process: who it is, when another host's owner counts as dead
 * (vlm.run.stale-timeout, default 30 s) and how often it beats for its own runs (vlm.run.heartbeat, 5 s).
 */
@Configuration(proxyBeanMethods = false)
public class RunConfig {

    @Bean
    RunOwnership runOwnership(Environment env) {
        String host = env.getProperty("vlm.run.host", RunOwnership.localHost());
        return new RunOwnership(host, env.getProperty("vlm.run.stale-timeout", Duration.class, Duration.ofSeconds(30)));
    }

    @Bean(destroyMethod = "close")
    Heartbeat heartbeat(RunStore runs, RunOwnership ownership, Environment env) {
        Duration every = env.getProperty("vlm.run.heartbeat", Duration.class, Duration.ofSeconds(5));
        if (every.compareTo(ownership.staleAfter().dividedBy(2)) > 0) {
            throw new IllegalArgumentException("vlm.run.heartbeat (" + every + ") must be at most half of vlm.run.stale-timeout ("
                    + ownership.staleAfter() + "), or live runs would look dead");
        }
        return new Heartbeat(runs, ownership, every);
    }
}
