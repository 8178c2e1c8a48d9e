package io.vlmbatch.config;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.vlmbatch.db.EmbeddedPostgresServer;
import io.vlmbatch.db.SchemaMigrations;
import io.vlmbatch.store.CsvExporter;
import io.vlmbatch.ledger.LedgerStore;
import io.vlmbatch.store.JsonlExporter;
import io.vlmbatch.store.ResultStore;
import io.vlmbatch.store.RunStore;
import io.vlmbatch.store.WorkItemStore;
import java.io.IOException;
import javax.sql.DataSource;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.support.JdbcTransactionManager;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * The database: spring.datasource.url (or SPRING_DATASOURCE_URL) when given, else the embedded
 * PostgreSQL under the user's data folder. Its schema is migrated to the newest version before anything
 * else touches it (db/SchemaMigrations).
 */
@Configuration(proxyBeanMethods = false)
public class DatabaseConfig {

    @Bean
    AppPaths appPaths() {
        return AppPaths.fromEnvironment();
    }

    @Bean(destroyMethod = "close")
    HikariDataSource dataSource(Environment env, AppPaths paths) throws IOException {
        HikariConfig config = new HikariConfig();
        String url = env.getProperty("spring.datasource.url");
        EmbeddedPostgresServer embedded = null;
        if (url != null && !url.isBlank()) {
            config.setJdbcUrl(url);
            config.setUsername(env.getProperty("spring.datasource.username"));
            config.setPassword(env.getProperty("spring.datasource.password"));
        } else {
            embedded = EmbeddedPostgresServer.startOrJoin(paths.postgresData());
            config.setJdbcUrl(embedded.jdbcUrl());
            config.setUsername(embedded.user());
            config.setPassword(embedded.password());
        }
        config.setPoolName("vlm-batch");
        // Each partition holds a connection for its chunk's transaction; a few more serve the job
        // repository, the progress line and the export. A CLI run sets it from its job file (Main);
        // serve's scheduler runs several jobs.
        config.setMaximumPoolSize(env.getProperty("vlm.db.pool-size", Integer.class, 16));
        config.setMinimumIdle(1);
        EmbeddedPostgresServer server = embedded;
        // The embedded server stops after our pool has closed (it stays up while other processes use it).
        HikariDataSource ds = new HikariDataSource(config) {
            @Override
            public void close() {
                super.close();
                if (server != null) server.close();
            }
        };
        try {
            SchemaMigrations.migrate(ds);
        } catch (RuntimeException e) {
            ds.close();
            throw e;
        }
        return ds;
    }

    @Bean
    PlatformTransactionManager transactionManager(DataSource dataSource) {
        return new JdbcTransactionManager(dataSource);
    }

    @Bean
    JdbcTemplate jdbcTemplate(DataSource dataSource) {
        return new JdbcTemplate(dataSource);
    }

    @Bean
    TransactionTemplate transactionTemplate(PlatformTransactionManager tm) {
        return new TransactionTemplate(tm);
    }

    @Bean
    RunStore runStore(JdbcTemplate jdbc) {
        return new RunStore(jdbc);
    }

    @Bean
    WorkItemStore workItemStore(JdbcTemplate jdbc) {
        return new WorkItemStore(jdbc);
    }

    @Bean
    ResultStore resultStore(JdbcTemplate jdbc) {
        return new ResultStore(jdbc);
    }

    @Bean
    LedgerStore ledgerStore(JdbcTemplate jdbc) {
        return new LedgerStore(jdbc);
    }

    @Bean
    CsvExporter csvExporter(JdbcTemplate jdbc, TransactionTemplate tx) {
        return new CsvExporter(jdbc, tx);
    }

    @Bean
    JsonlExporter jsonlExporter(JdbcTemplate jdbc, TransactionTemplate tx) {
        return new JsonlExporter(jdbc, tx);
    }
}
