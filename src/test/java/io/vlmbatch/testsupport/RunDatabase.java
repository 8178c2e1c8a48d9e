package io.vlmbatch.testsupport;

import io.vlmbatch.db.EmbeddedPostgresServer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.datasource.SingleConnectionDataSource;

/**
 * The embedded PostgreSQL of a launcher data folder, joined (or started) by the test to read results.
 * It holds one connection open, so a launcher that exits sees another client and leaves the server up.
 */
public final class RunDatabase implements AutoCloseable {
    private final EmbeddedPostgresServer server;
    private final SingleConnectionDataSource dataSource;
    public final JdbcTemplate jdbc;

    public RunDatabase(Path dataDir) throws Exception {
        server = EmbeddedPostgresServer.startOrJoin(dataDir.resolve("pg"));
        dataSource = new SingleConnectionDataSource(server.jdbcUrl(), server.user(), server.password(), true);
        jdbc = new JdbcTemplate(dataSource);
    }

    public Long runId(String job) {
        List<Long> ids = jdbc.queryForList("SELECT run_id FROM vlm_run WHERE job_name = ? ORDER BY run_id DESC", Long.class, job);
        return ids.isEmpty() ? null : ids.getFirst();
    }

    public long count(String sql, Object... args) {
        Long n = jdbc.queryForObject(sql, Long.class, args);
        return n == null ? 0 : n;
    }

    public List<Map<String, Object>> rows(String sql, Object... args) {
        return jdbc.queryForList(sql, args);
    }

    @Override
    public void close() {
        dataSource.destroy();
        server.close();
    }
}
