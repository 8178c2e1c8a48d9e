package io.vlmbatch.config;

import javax.sql.DataSource;
import org.springframework.core.io.ClassPathResource;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.datasource.init.ResourceDatabasePopulator;

/**
 * Creates the Spring Batch repository tables (spring-batch-core's schema-postgresql.sql) when they are
 * missing, then applies sql/vlm-batch.sql (idempotent). An advisory lock keeps two processes that start
 * at the same moment from racing on a fresh database.
 */
final class SchemaInitializer {
    private static final long LOCK_KEY = 0x766c6d6261746368L; // "vlmbatch"

    private SchemaInitializer() {}

    static void apply(DataSource dataSource) {
        JdbcTemplate jdbc = new JdbcTemplate(dataSource);
        jdbc.execute((java.sql.Connection con) -> {
            try (var lock = con.prepareStatement("SELECT pg_advisory_lock(?)")) {
                lock.setLong(1, LOCK_KEY);
                lock.execute();
            }
            try {
                boolean batchTables;
                try (var st = con.createStatement(); var rs = st.executeQuery("SELECT to_regclass('batch_job_instance') IS NOT NULL")) {
                    rs.next();
                    batchTables = rs.getBoolean(1);
                }
                ResourceDatabasePopulator populator = new ResourceDatabasePopulator();
                if (!batchTables) populator.addScript(new ClassPathResource("org/springframework/batch/core/schema-postgresql.sql"));
                populator.addScript(new ClassPathResource("sql/vlm-batch.sql"));
                populator.populate(con);
            } finally {
                try (var unlock = con.prepareStatement("SELECT pg_advisory_unlock(?)")) {
                    unlock.setLong(1, LOCK_KEY);
                    unlock.execute();
                }
            }
            return null;
        });
    }
}
