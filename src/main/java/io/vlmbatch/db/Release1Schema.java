package io.vlmbatch.db;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;
import org.flywaydb.core.api.MigrationVersion;
import org.flywaydb.core.api.migration.Context;
import org.flywaydb.core.api.migration.JavaMigration;
import org.springframework.core.io.ClassPathResource;
import org.springframework.jdbc.datasource.init.ResourceDatabasePopulator;

/**
 * Schema version 1: exactly what release 1 (the last release before migrations) applied at every start,
 * i.e. Spring Batch's job repository tables (spring-batch-core's own DDL, when BATCH_JOB_INSTANCE is
 * missing) and our tables (db/release-1/*.sql). A Java migration rather than a .sql file because the
 * Spring Batch part is read from the spring-batch-core jar instead of being copied into this repository;
 * Release1SchemaTest pins that DDL, so a Spring Batch upgrade that changes it cannot slip into version 1.
 *
 * Idempotent on purpose: {@link SchemaMigrations} also uses it to complete a database that release 1
 * made only in part (a database only ever used by `run` has no scheduler tables) before baselining it.
 */
final class Release1Schema implements JavaMigration {
    static final String SPRING_BATCH_DDL = "org/springframework/batch/core/schema-postgresql.sql";
    private static final List<String> OWN_SCRIPTS = List.of("db/release-1/vlm-batch.sql", "db/release-1/vlm-schedule.sql");

    /** Every table release 1 created. */
    static final List<String> TABLES = List.of(
            "batch_job_instance", "batch_job_execution", "batch_job_execution_params", "batch_step_execution",
            "batch_step_execution_context", "batch_job_execution_context",
            "vlm_run", "vlm_work_item", "vlm_result", "vlm_schedule_job", "vlm_schedule_run");

    @Override
    public MigrationVersion getVersion() {
        return MigrationVersion.fromVersion("1");
    }

    @Override
    public String getDescription() {
        return "release 1 schema";
    }

    /** Over the scripts' text, so that `validate` notices if what version 1 runs ever changes. */
    @Override
    public Integer getChecksum() {
        CRC32 crc = new CRC32();
        for (String script : scripts()) {
            try (var in = new ClassPathResource(script).getInputStream()) {
                crc.update(new String(in.readAllBytes(), StandardCharsets.UTF_8).replace("\r\n", "\n").getBytes(StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + script, e);
            }
        }
        return (int) crc.getValue();
    }

    @Override
    public boolean canExecuteInTransaction() {
        return true;
    }

    @Override
    public void migrate(Context context) throws SQLException {
        apply(context.getConnection());
    }

    /** Creates what is missing of release 1's schema; leaves what exists (and its rows) alone. */
    static void apply(Connection con) throws SQLException {
        ResourceDatabasePopulator populator = new ResourceDatabasePopulator();
        // Spring Batch's DDL has no IF NOT EXISTS: release 1 ran it only on a database without its tables.
        boolean batchTables = !missingTables(con).contains("batch_job_instance");
        for (String script : scripts()) {
            if (!script.equals(SPRING_BATCH_DDL) || !batchTables) populator.addScript(new ClassPathResource(script));
        }
        populator.populate(con);
    }

    /** Release 1's tables that the connection's current schema lacks. */
    static List<String> missingTables(Connection con) throws SQLException {
        List<String> missing = new ArrayList<>();
        try (PreparedStatement st = con.prepareStatement("SELECT to_regclass(?) IS NULL")) {
            for (String table : TABLES) {
                st.setString(1, table);
                try (ResultSet rs = st.executeQuery()) {
                    rs.next();
                    if (rs.getBoolean(1)) missing.add(table);
                }
            }
        }
        return missing;
    }

    private static List<String> scripts() {
        List<String> all = new ArrayList<>();
        all.add(SPRING_BATCH_DDL);
        all.addAll(OWN_SCRIPTS);
        return all;
    }
}
