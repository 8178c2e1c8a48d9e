package io.vlmbatch.config;

import io.vlmbatch.run.RunConfig;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;

/**
 * What every command's context holds: the database (and its stores), this process's run ownership and
 * the Batch job repository with the run lifecycle. run/restart add PipelineConfig, serve adds ServeConfig.
 */
@Configuration(proxyBeanMethods = false)
@Import({DatabaseConfig.class, RunConfig.class, BatchConfig.class})
public class CoreConfig {
}
