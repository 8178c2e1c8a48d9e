package io.vlmbatch.db;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The embedded PostgreSQL trusts no connection: a new data directory and one left by an earlier release
 * (which trusted every local connection) both end up asking for the generated password kept in the data
 * directory, the earlier one with its data intact; a lock-down interrupted halfway is finished on the
 * next start.
 */
class EmbeddedPostgresServerTest {
    @TempDir
    Path tmp;

    static String passwordFile(Path dataDir) throws Exception {
        return Files.readString(dataDir.resolve("vlm-batch.password")).strip();
    }

    static Connection connect(EmbeddedPostgresServer pg, String password) throws SQLException {
        return DriverManager.getConnection(pg.jdbcUrl(), "postgres", password);
    }

    static void assertRefused(EmbeddedPostgresServer pg, String password) {
        assertThatThrownBy(() -> connect(pg, password).close()).as("password \"" + password + "\"")
                .isInstanceOf(SQLException.class).hasMessageContaining("password");
    }

    static void assertLockedDown(Path dataDir, EmbeddedPostgresServer pg) throws Exception {
        Path file = dataDir.resolve("vlm-batch.password");
        assertThat(file).exists();
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file))).isEqualTo("rw-------");
        String password = passwordFile(dataDir);
        assertThat(password).hasSizeGreaterThanOrEqualTo(24);
        assertRefused(pg, "");
        assertRefused(pg, "postgres");
        assertRefused(pg, password + "x");
        try (Connection c = connect(pg, password)) {
            assertThat(c.isValid(5)).isTrue();
        }
        assertThat(Files.readString(dataDir.resolve("pg_hba.conf"))).doesNotContain("trust");
    }

    @Test
    void aNewDataDirectoryAsksForTheGeneratedPassword() throws Exception {
        Path dataDir = tmp.resolve("pg");
        try (EmbeddedPostgresServer pg = EmbeddedPostgresServer.startOrJoin(dataDir)) {
            assertLockedDown(dataDir, pg);
            // another process joins the running server with the same password
            EmbeddedPostgresServer joined = EmbeddedPostgresServer.startOrJoin(dataDir);
            assertThat(joined.port()).isEqualTo(pg.port());
            try (Connection c = connect(joined, passwordFile(dataDir))) {
                assertThat(c.isValid(5)).isTrue();
            }
        }
        String password = passwordFile(dataDir);
        // started again later: the same password, still required
        try (EmbeddedPostgresServer pg = EmbeddedPostgresServer.startOrJoin(dataDir)) {
            assertLockedDown(dataDir, pg);
            assertThat(passwordFile(dataDir)).isEqualTo(password);
        }
    }

    @Test
    void aJoinerLeavingWhileTheStarterLivesLeavesTheServerRunningForTheNextOneToJoin() throws Exception {
        Path dataDir = tmp.resolve("shared-pg");
        try (EmbeddedPostgresServer starter = EmbeddedPostgresServer.startOrJoin(dataDir)) {
            String password = passwordFile(dataDir);
            EmbeddedPostgresServer joiner = EmbeddedPostgresServer.startOrJoin(dataDir);
            joiner.close(); // no other client is connected, but the starter (holding zonky's lock) is alive
            try (Connection c = connect(starter, password)) {
                assertThat(c.isValid(5)).as("still running after the joiner left").isTrue();
            }
            // the next process joins it; starting its own would fail on the starter's lock
            EmbeddedPostgresServer next = EmbeddedPostgresServer.startOrJoin(dataDir);
            assertThat(next.port()).isEqualTo(starter.port());
        }
    }

    @Test
    void aTrustingDataDirectoryOfAnEarlierReleaseIsLockedDownWithItsDataKept() throws Exception {
        Path dataDir = tmp.resolve("old-pg");
        // what the earlier release left: zonky's initdb (-A trust) and some data, no password anywhere
        try (EmbeddedPostgres old = EmbeddedPostgres.builder().setDataDirectory(dataDir).setCleanDataDirectory(false).start();
             Connection c = DriverManager.getConnection(old.getJdbcUrl("postgres", "postgres"), "postgres", "");
             Statement s = c.createStatement()) {
            s.execute("CREATE TABLE kept (v text)");
            s.execute("INSERT INTO kept VALUES ('from the earlier release')");
        }
        assertThat(dataDir.resolve("vlm-batch.password")).doesNotExist();
        assertThat(Files.readString(dataDir.resolve("pg_hba.conf"))).contains("trust");

        String password;
        try (EmbeddedPostgresServer pg = EmbeddedPostgresServer.startOrJoin(dataDir)) {
            assertLockedDown(dataDir, pg);
            password = passwordFile(dataDir);
            try (Connection c = connect(pg, password); Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT v FROM kept")) {
                assertThat(r.next()).isTrue();
                assertThat(r.getString(1)).isEqualTo("from the earlier release");
            }
        }

        // a lock-down cut short after the password was set but before pg_hba.conf was replaced
        Files.writeString(dataDir.resolve("pg_hba.conf"), "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n");
        try (EmbeddedPostgresServer pg = EmbeddedPostgresServer.startOrJoin(dataDir)) {
            assertLockedDown(dataDir, pg);
            assertThat(passwordFile(dataDir)).as("the password kept").isEqualTo(password);
        }
        try (EmbeddedPostgresServer pg = EmbeddedPostgresServer.startOrJoin(dataDir)) {
            assertLockedDown(dataDir, pg);
        }
    }
}
