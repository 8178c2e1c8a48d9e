package io.vlmbatch.config;

import org.springframework.batch.core.configuration.support.JdbcDefaultBatchConfiguration;
import org.springframework.context.annotation.Configuration;

/**
 * The Spring Batch job repository in PostgreSQL. Batch 6's default repository keeps no state, which
 * would make restart impossible, so the JDBC one is configured explicitly; it uses the context's
 * "dataSource" and "transactionManager" beans. Job beans are registered with the JobOperator's
 * registry, which is what `restart` looks jobs up in.
 */
@Configuration(proxyBeanMethods = false)
public class BatchConfig extends JdbcDefaultBatchConfiguration {
}
