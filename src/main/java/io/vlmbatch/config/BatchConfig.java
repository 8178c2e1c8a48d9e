package io.vlmbatch.config;

import org.springframework.batch.core.configuration.JobRegistry;
import org.springframework.batch.core.configuration.support.JdbcDefaultBatchConfiguration;
import org.springframework.batch.core.configuration.support.MapJobRegistry;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.transaction.annotation.Isolation;

/**
 * The Spring Batch job repository in PostgreSQL. Batch 6's default repository keeps no state, which
 * would make restart impossible, so the JDBC one is configured explicitly; it uses the context's
 * "dataSource" and "transactionManager" beans. Jobs are made per job file name at launch (PipelineJobs),
 * not declared as beans, so they register themselves with the JobOperator's registry, exposed here.
 */
@Configuration(proxyBeanMethods = false)
public class BatchConfig extends JdbcDefaultBatchConfiguration {
    private final MapJobRegistry registry = new MapJobRegistry();

    @Bean
    JobRegistry jobRegistry() {
        return registry;
    }

    @Override
    protected JobRegistry getJobRegistry() {
        return registry;
    }

    /**
     * Batch creates job instances and executions SERIALIZABLE by default. On PostgreSQL, runs started
     * at the same moment (several jobs due on one cron tick) then fail with "could not serialize
     * access". READ COMMITTED is enough: the unique key on (job name, job key) already keeps one
     * instance per run, and a second execution of one instance is refused by Batch's own check.
     */
    @Override
    protected Isolation getIsolationLevelForCreate() {
        return Isolation.READ_COMMITTED;
    }
}
