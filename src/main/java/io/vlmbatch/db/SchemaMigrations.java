package io.vlmbatch.db;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.List;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.output.MigrateResult;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Brings the database's schema to the newest version before anything else uses it (Flyway; history in
 * flyway_schema_history). Convention for a schema change: a new file
 * src/main/resources/db/migration/V&lt;next number&gt;__&lt;what_it_does&gt;.sql (e.g. V2__run_heartbeat.sql),
 * never an edit of an applied one. Version 1 is release 1's schema ({@link Release1Schema}).
 *
 * First contact with a database made by release 1 (its tables, no history): whatever release 1 would
 * have created but the database lacks is created, the database is baselined at version 1, and the
 * later versions are applied; rows stay as they are. An empty database gets every version from 1 on.
 */
public final class SchemaMigrations {
    private static final Logger log = LoggerFactory.getLogger(SchemaMigrations.class);
    /** Release 1 took the same session lock around its schema SQL, so it also waits for us and we for it. */
    private static final long LOCK_KEY = 0x766c6d6261746368L; // "vlmbatch"
    static final String HISTORY_TABLE = "flyway_schema_history";

    private SchemaMigrations() {}

    /** Migrates; two processes starting together on one database take turns. */
    public static void migrate(DataSource dataSource) {
        Flyway flyway = Flyway.configure()
                .dataSource(dataSource)
                .locations("classpath:db/migration")
                .javaMigrations(new Release1Schema())
                .table(HISTORY_TABLE)
                .baselineVersion("1")
                .baselineDescription("release 1 schema, found in place")
                // A misnamed file in db/migration is an error instead of a migration silently skipped.
                .validateMigrationNaming(true)
                .load();
        try (Connection lock = dataSource.getConnection()) {
            advisoryLock(lock, "pg_advisory_lock");
            try {
                baselineRelease1(lock, flyway);
                MigrateResult result = flyway.migrate();
                if (result.migrationsExecuted > 0) {
                    log.info("database schema migrated from version {} to {}",
                            result.initialSchemaVersion == null ? "none" : result.initialSchemaVersion, result.targetSchemaVersion);
                }
            } finally {
                advisoryLock(lock, "pg_advisory_unlock");
            }
        } catch (SQLException e) {
            throw new IllegalStateException("cannot migrate the database schema: " + e.getMessage(), e);
        }
    }

    /** A database with tables but no history was made before migrations: complete release 1's schema, baseline it. */
    private static void baselineRelease1(Connection con, Flyway flyway) throws SQLException {
        if (tableExists(con, HISTORY_TABLE) || tablesInSchema(con) == 0) return;
        List<String> missing = Release1Schema.missingTables(con);
        if (!missing.isEmpty()) {
            log.info("completing the release 1 schema of this database (missing: {})", String.join(", ", missing));
            boolean auto = con.getAutoCommit();
            con.setAutoCommit(false);
            try {
                Release1Schema.apply(con);
                con.commit();
            } catch (SQLException | RuntimeException e) {
                con.rollback();
                throw e;
            } finally {
                con.setAutoCommit(auto);
            }
        }
        flyway.baseline();
        log.info("database made before schema migrations: baselined at version 1, its rows kept");
    }

    private static boolean tableExists(Connection con, String table) throws SQLException {
        try (PreparedStatement st = con.prepareStatement("SELECT to_regclass(?) IS NOT NULL")) {
            st.setString(1, table);
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    /** Tables of the connection's current schema (where Flyway works, and where release 1 created its tables). */
    private static int tablesInSchema(Connection con) throws SQLException {
        try (PreparedStatement st = con.prepareStatement(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()");
             ResultSet rs = st.executeQuery()) {
            rs.next();
            return rs.getInt(1);
        }
    }

    private static void advisoryLock(Connection con, String function) throws SQLException {
        try (PreparedStatement st = con.prepareStatement("SELECT " + function + "(?)")) {
            st.setLong(1, LOCK_KEY);
            st.execute();
        }
    }
}
