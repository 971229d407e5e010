//! The event schema as numbered migrations, one text per SQL dialect, applied in order at open.
//!
//! Both dialects describe the same table. PostgreSQL text columns use the `"C"` collation so that grouping
//! and ordering compare bytes exactly like SQLite's default `BINARY` collation (identical stats on both).
//! Event ids are stored binary (SQLite: the 16-byte BLOB, PostgreSQL: `uuid`): less than half the key size
//! of the 36-char text, so fewer index pages are dirtied and written per commit.
//! `migrate.rs` applies them and records each in `schema_migrations(version, applied_ms)`; a migration never
//! changes once released, new changes get a new version. The client IP is deliberately not a column.

/// One schema step.
pub(crate) struct Migration {
    pub version: i64,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Columns written by the insert, in bind order (both backends).
pub(crate) const INSERT_COLUMNS: &str =
    "event_id, site, session_id, event_type, client_ts_ms, received_ms, \
     route, url, browser, os, device, value, name, endpoint, status, rating, raw, \
     release, fingerprint, stack";

/// Number of columns in [`INSERT_COLUMNS`].
pub(crate) const INSERT_COLUMN_COUNT: usize = 20;

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: r#"
        CREATE TABLE events (
            event_id     BLOB NOT NULL PRIMARY KEY,
            site         TEXT NOT NULL,
            session_id   TEXT NOT NULL,
            event_type   TEXT NOT NULL,
            client_ts_ms INTEGER NOT NULL,
            received_ms  INTEGER NOT NULL,
            route        TEXT NOT NULL,
            url          TEXT NOT NULL,
            browser      TEXT NOT NULL,
            os           TEXT NOT NULL,
            device       TEXT NOT NULL,
            value        REAL,
            name         TEXT,
            endpoint     TEXT,
            status       INTEGER,
            rating       TEXT,
            raw          TEXT NOT NULL
        );
        CREATE INDEX events_site_type_ts ON events (site, event_type, client_ts_ms);
        CREATE INDEX events_site_session ON events (site, session_id);
        CREATE INDEX events_received ON events (received_ms);
    "#,
        postgres: r#"
        CREATE TABLE events (
            event_id     UUID NOT NULL PRIMARY KEY,
            site         TEXT COLLATE "C" NOT NULL,
            session_id   TEXT COLLATE "C" NOT NULL,
            event_type   TEXT COLLATE "C" NOT NULL,
            client_ts_ms BIGINT NOT NULL,
            received_ms  BIGINT NOT NULL,
            route        TEXT COLLATE "C" NOT NULL,
            url          TEXT COLLATE "C" NOT NULL,
            browser      TEXT COLLATE "C" NOT NULL,
            os           TEXT COLLATE "C" NOT NULL,
            device       TEXT COLLATE "C" NOT NULL,
            value        DOUBLE PRECISION,
            name         TEXT COLLATE "C",
            endpoint     TEXT COLLATE "C",
            status       INTEGER,
            rating       TEXT COLLATE "C",
            raw          TEXT NOT NULL
        );
        CREATE INDEX events_site_type_ts ON events (site, event_type, client_ts_ms);
        CREATE INDEX events_site_session ON events (site, session_id);
        CREATE INDEX events_received ON events (received_ms);
    "#,
    },
    Migration {
        // The (site, session_id) index slowed SQLite's inserts: session ids are random, so every event dirtied
        // its own index page. Its only user, the privacy delete by session, is rare and scans instead
        // (bench/README.md, "The store's write path").
        version: 2,
        sqlite: "DROP INDEX IF EXISTS events_site_session;",
        postgres: "DROP INDEX IF EXISTS events_site_session;",
    },
    Migration {
        version: 3,
        sqlite: "DROP INDEX IF EXISTS events_site_type_ts; DROP INDEX IF EXISTS events_received; \
                 CREATE INDEX events_site_type_received ON events (site, event_type, received_ms);",
        postgres: "DROP INDEX IF EXISTS events_site_type_ts; \
                   CREATE INDEX events_site_type_received ON events (site, event_type, received_ms);",
    },
    Migration {
        // SQLite: the stats index's right edges (one per event type) were rewritten into the WAL by every
        // commit. Rows are appended in receive order, so the stats scan the rowid range of their window
        // instead (sqlite/reader.rs, `first_rowid_received_since`; bench/README.md, "The store's write path").
        // PostgreSQL's heap is not ordered that way; it keeps the index.
        version: 4,
        sqlite: "DROP INDEX IF EXISTS events_site_type_received;",
        postgres: "SELECT 1;",
    },
    Migration {
        // The idempotency key becomes (site, session_id, event_id): a retry resends its events in their
        // session. Keyed by the id alone, each insert went wherever the id sorts, and ids made on browsers'
        // clocks over the seconds a batch is buffered land all over the index: one rewritten page per event.
        // Keyed by session first, a batch's events share one page. Also the index the privacy delete by
        // session uses. SQLite cannot drop a primary key, so the table is rebuilt (rowids, i.e. receive order,
        // kept). bench/README.md, "The store's write path".
        version: 5,
        sqlite: r#"
        CREATE TABLE events_v5 (
            event_id     BLOB NOT NULL,
            site         TEXT NOT NULL,
            session_id   TEXT NOT NULL,
            event_type   TEXT NOT NULL,
            client_ts_ms INTEGER NOT NULL,
            received_ms  INTEGER NOT NULL,
            route        TEXT NOT NULL,
            url          TEXT NOT NULL,
            browser      TEXT NOT NULL,
            os           TEXT NOT NULL,
            device       TEXT NOT NULL,
            value        REAL,
            name         TEXT,
            endpoint     TEXT,
            status       INTEGER,
            rating       TEXT,
            raw          TEXT NOT NULL
        );
        INSERT INTO events_v5 (rowid, event_id, site, session_id, event_type, client_ts_ms, received_ms, route,
                               url, browser, os, device, value, name, endpoint, status, rating, raw)
            SELECT rowid, event_id, site, session_id, event_type, client_ts_ms, received_ms, route,
                   url, browser, os, device, value, name, endpoint, status, rating, raw
            FROM events ORDER BY rowid;
        DROP TABLE events;
        ALTER TABLE events_v5 RENAME TO events;
        CREATE UNIQUE INDEX events_site_session_event ON events (site, session_id, event_id);
    "#,
        postgres: "ALTER TABLE events DROP CONSTRAINT events_pkey; \
                   CREATE UNIQUE INDEX events_site_session_event ON events (site, session_id, event_id);",
    },
    Migration {
        // One row the store rewrites to learn whether it can write (health.rs): a read answers while the disk
        // is full or the server is a read-only standby, a write does not.
        version: 6,
        sqlite: "CREATE TABLE write_probe (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL);",
        postgres: "CREATE TABLE write_probe (id INTEGER PRIMARY KEY, at_ms BIGINT NOT NULL);",
    },
    Migration {
        // Releases, source maps and error groups (issue #15). Every event may carry its `release`; an error
        // carries its group's `fingerprint` and its symbolicated `stack`. Nullable columns without a default:
        // adding them rewrites no row on either engine. `sourcemaps` holds uploaded maps (never served
        // back); `error_groups` remembers which groups exist, for the new-groups counter.
        version: 7,
        sqlite: r#"
        ALTER TABLE events ADD COLUMN release TEXT;
        ALTER TABLE events ADD COLUMN fingerprint TEXT;
        ALTER TABLE events ADD COLUMN stack TEXT;
        CREATE TABLE sourcemaps (
            site         TEXT NOT NULL,
            release      TEXT NOT NULL,
            url          TEXT NOT NULL,
            name         TEXT NOT NULL,
            bytes        INTEGER NOT NULL,
            uploaded_ms  INTEGER NOT NULL,
            content      TEXT NOT NULL,
            PRIMARY KEY (site, release, url)
        );
        CREATE TABLE error_groups (
            site          TEXT NOT NULL,
            fingerprint   TEXT NOT NULL,
            first_seen_ms INTEGER NOT NULL,
            last_seen_ms  INTEGER NOT NULL,
            PRIMARY KEY (site, fingerprint)
        );
    "#,
        postgres: r#"
        ALTER TABLE events ADD COLUMN release TEXT COLLATE "C";
        ALTER TABLE events ADD COLUMN fingerprint TEXT COLLATE "C";
        ALTER TABLE events ADD COLUMN stack TEXT;
        CREATE TABLE sourcemaps (
            site         TEXT COLLATE "C" NOT NULL,
            release      TEXT COLLATE "C" NOT NULL,
            url          TEXT COLLATE "C" NOT NULL,
            name         TEXT COLLATE "C" NOT NULL,
            bytes        BIGINT NOT NULL,
            uploaded_ms  BIGINT NOT NULL,
            content      TEXT NOT NULL,
            PRIMARY KEY (site, release, url)
        );
        CREATE TABLE error_groups (
            site          TEXT COLLATE "C" NOT NULL,
            fingerprint   TEXT COLLATE "C" NOT NULL,
            first_seen_ms BIGINT NOT NULL,
            last_seen_ms  BIGINT NOT NULL,
            PRIMARY KEY (site, fingerprint)
        );
    "#,
    },
    Migration {
        // An event id is unique per site (issue #15), not only within a session: the idempotency key becomes
        // (site, event_id), so the same event sent again in another session (a sender that renewed its
        // session between two attempts) is stored once. Rows the old key allowed, one site's id in several
        // sessions, are reduced to the earliest received (ties: the first written) before the unique index is
        // built. The privacy delete by session keeps an index of its own, (site, session_id), which the old
        // key's index served until now. The cost: rum-sdk.js stamps each id when its event happened, over the
        // ~5 s a batch is buffered, so a batch's ids do not sit together in the new index as they did under
        // its session; at high rates each event rewrites an index page of its own (bench/README.md, "The
        // store's write path": SQLite's store alone ~2.8x slower with such ids, not slower with ids stamped
        // together per batch).
        version: 8,
        sqlite: r#"
        DELETE FROM events WHERE rowid IN (
            SELECT rowid FROM (
                SELECT rowid, ROW_NUMBER() OVER (PARTITION BY site, event_id ORDER BY received_ms, rowid) AS n
                FROM events)
            WHERE n > 1);
        DROP INDEX IF EXISTS events_site_session_event;
        CREATE UNIQUE INDEX events_site_event ON events (site, event_id);
        CREATE INDEX events_site_session ON events (site, session_id);
    "#,
        postgres: r#"
        DELETE FROM events e USING (
            SELECT ctid, ROW_NUMBER() OVER (PARTITION BY site, event_id ORDER BY received_ms, ctid) AS n
            FROM events) d
        WHERE e.ctid = d.ctid AND d.n > 1;
        DROP INDEX IF EXISTS events_site_session_event;
        CREATE UNIQUE INDEX events_site_event ON events (site, event_id);
        CREATE INDEX events_site_session ON events (site, session_id);
    "#,
    },
    Migration {
        // Rollups (issue #18, rollup.rs): the stats API reads per-minute/hour/day aggregates kept at write
        // time instead of every raw event of its window. Three indexes: the window's range scan, the merged
        // rows' unique key (compaction upserts them; partial rows repeat it, so the index is partial), and
        // the partial rows still to be folded. `rollup_backfill` rolls up the events stored before this
        // migration: those received before `until_ms` (the writer counts the others), walked in chunks
        // after `cursor_*` (SQLite: rowid; PostgreSQL: (site, event_id)). An empty store has nothing to
        // walk and is done at once.
        version: 9,
        sqlite: r#"
        CREATE TABLE rollups (
            site      TEXT NOT NULL,
            kind      TEXT NOT NULL,
            key       TEXT NOT NULL,
            name      TEXT NOT NULL,
            level     INTEGER NOT NULL,
            bucket_ms INTEGER NOT NULL,
            count     INTEGER NOT NULL,
            errors    INTEGER NOT NULL,
            good      INTEGER NOT NULL,
            ni        INTEGER NOT NULL,
            poor      INTEGER NOT NULL,
            sketch    BLOB NOT NULL,
            sessions  BLOB NOT NULL
        );
        CREATE INDEX rollups_window ON rollups (site, kind, level, bucket_ms);
        CREATE UNIQUE INDEX rollups_merged ON rollups (site, kind, level, bucket_ms, key, name) WHERE level > 0;
        CREATE INDEX rollups_pending ON rollups (level) WHERE level = 0;
        CREATE TABLE rollup_backfill (
            id          INTEGER PRIMARY KEY,
            until_ms    INTEGER NOT NULL,
            cursor_site TEXT NOT NULL,
            cursor_id   TEXT NOT NULL,
            done        INTEGER NOT NULL
        );
        INSERT INTO rollup_backfill (id, until_ms, cursor_site, cursor_id, done)
            SELECT 1,
                   CASE WHEN EXISTS (SELECT 1 FROM events) THEN CAST(unixepoch('subsec') * 1000 AS INTEGER)
                        ELSE -9223372036854775808 END,
                   '', '0',
                   CASE WHEN EXISTS (SELECT 1 FROM events) THEN 0 ELSE 1 END;
    "#,
        postgres: r#"
        CREATE TABLE rollups (
            site      TEXT COLLATE "C" NOT NULL,
            kind      TEXT COLLATE "C" NOT NULL,
            key       TEXT COLLATE "C" NOT NULL,
            name      TEXT COLLATE "C" NOT NULL,
            level     INTEGER NOT NULL,
            bucket_ms BIGINT NOT NULL,
            count     BIGINT NOT NULL,
            errors    BIGINT NOT NULL,
            good      BIGINT NOT NULL,
            ni        BIGINT NOT NULL,
            poor      BIGINT NOT NULL,
            sketch    BYTEA NOT NULL,
            sessions  BYTEA NOT NULL
        );
        CREATE INDEX rollups_window ON rollups (site, kind, level, bucket_ms);
        CREATE UNIQUE INDEX rollups_merged ON rollups (site, kind, level, bucket_ms, key, name) WHERE level > 0;
        CREATE INDEX rollups_pending ON rollups (level) WHERE level = 0;
        CREATE TABLE rollup_backfill (
            id          INTEGER PRIMARY KEY,
            until_ms    BIGINT NOT NULL,
            cursor_site TEXT COLLATE "C" NOT NULL,
            cursor_id   TEXT NOT NULL,
            done        INTEGER NOT NULL
        );
        INSERT INTO rollup_backfill (id, until_ms, cursor_site, cursor_id, done)
            SELECT 1,
                   CASE WHEN EXISTS (SELECT 1 FROM events)
                        THEN (extract(epoch FROM clock_timestamp()) * 1000)::int8
                        ELSE -9223372036854775808 END,
                   '', '00000000-0000-0000-0000-000000000000',
                   CASE WHEN EXISTS (SELECT 1 FROM events) THEN 0 ELSE 1 END;
    "#,
    },
    Migration {
        // PostgreSQL: the stats index holds only the event types some query reads through it (error groups,
        // timeline, sessions: `page_load`, `route_change`, `error`; the pages, api, errors and vitals stats
        // read the rollups, migration 9); API calls, vitals, resource loads, long tasks, interactions and
        // custom events, about three quarters of a typical page's events, no longer update it on insert. Every such query names its types as constants, so the planner proves
        // the index's predicate from the query's own. And the session index becomes a hash index on
        // `session_id` alone (same name): its two users, the privacy delete and a session's events, ask for
        // one session of one site, and session ids are random, so the site is a filter on a handful of rows;
        // a hash insert compares no text (~0.7 against ~1.9-2.5 us of insert CPU per row alone, ~3% more
        // bytes per event). (Version 9 is the rollups'.) SQLite has no stats index (migration 4) and keeps its
        // btree. bench/README.md, "PostgreSQL's write path".
        version: 10,
        sqlite: "SELECT 1;",
        postgres: "DROP INDEX IF EXISTS events_site_type_received; \
                   CREATE INDEX events_site_type_received ON events (site, event_type, received_ms) \
                   WHERE event_type IN ('page_load', 'route_change', 'error'); \
                   DROP INDEX IF EXISTS events_site_session; \
                   CREATE INDEX events_site_session ON events USING hash (session_id);",
    },
    Migration {
        // PostgreSQL: `events` becomes partitioned by client day (`PARTITION BY RANGE (client_ts_ms)`, one
        // partition per UTC day, `events_pYYYYMMDD`, created ahead by the store: postgres/partitions.rs), so
        // retention drops whole days instead of deleting rows. By client time and not receive time because a
        // unique index of a partitioned table must hold the partition key: a retry reaches us at another
        // receive time but with the same client timestamp, so keyed (site, event_id, client_ts_ms) it still
        // meets its first copy, in the same partition. The ingest accepts client timestamps within
        // [now - limits.max_past, now + limits.max_future] only (event.rs), so every event lands in a day
        // near the one it was received in. The receive-time index goes (retention drops days, it no longer
        // searches them; one index less per insert); the stats and session indexes become partitioned ones.
        //
        // An existing table is not rewritten: it is renamed `events_legacy`, keeps its rows and its indexes
        // (those the new table has are adopted, not rebuilt; only the new key's index is built, and the old
        // key's dropped), and is attached as the partition FROM (MINVALUE) TO (the UTC midnight after the later
        // of now and its newest client timestamp): the attach scans it once to check that bound. Day
        // partitions start there. Retention deletes its rows by receive time (its own `events_received`
        // index) until that bound passes the cutoff, then drops it. An empty table is simply replaced.
        // `events_default` takes anything no day partition covers (a day not created in time, max_past raised);
        // retention deletes its rows by receive time. Idempotent (an `events` already partitioned is left as
        // it is). SQLite keeps its one table.
        version: 11,
        sqlite: "SELECT 1;",
        postgres: r#"
        DO $$
        DECLARE
            upper_ms BIGINT;
        BEGIN
            IF (SELECT relkind FROM pg_class WHERE oid = 'events'::regclass) = 'p' THEN
                RETURN;
            END IF;
            ALTER TABLE events RENAME TO events_legacy;
            ALTER INDEX events_site_event RENAME TO events_legacy_site_event;
            ALTER INDEX events_site_type_received RENAME TO events_legacy_site_type_received;
            ALTER INDEX events_site_session RENAME TO events_legacy_site_session;
            ALTER INDEX IF EXISTS events_received RENAME TO events_legacy_received;
            CREATE TABLE events (
                event_id     UUID NOT NULL,
                site         TEXT COLLATE "C" NOT NULL,
                session_id   TEXT COLLATE "C" NOT NULL,
                event_type   TEXT COLLATE "C" NOT NULL,
                client_ts_ms BIGINT NOT NULL,
                received_ms  BIGINT NOT NULL,
                route        TEXT COLLATE "C" NOT NULL,
                url          TEXT COLLATE "C" NOT NULL,
                browser      TEXT COLLATE "C" NOT NULL,
                os           TEXT COLLATE "C" NOT NULL,
                device       TEXT COLLATE "C" NOT NULL,
                value        DOUBLE PRECISION,
                name         TEXT COLLATE "C",
                endpoint     TEXT COLLATE "C",
                status       INTEGER,
                rating       TEXT COLLATE "C",
                raw          TEXT NOT NULL,
                release      TEXT COLLATE "C",
                fingerprint  TEXT COLLATE "C",
                stack        TEXT
            ) PARTITION BY RANGE (client_ts_ms);
            CREATE UNIQUE INDEX events_site_event_ts ON events (site, event_id, client_ts_ms);
            CREATE INDEX events_site_type_received ON events (site, event_type, received_ms)
                WHERE event_type IN ('page_load', 'route_change', 'error');
            CREATE INDEX events_site_session ON events USING hash (session_id);
            IF EXISTS (SELECT 1 FROM events_legacy) THEN
                SELECT (floor(greatest(max(client_ts_ms),
                                       (extract(epoch FROM clock_timestamp()) * 1000)::int8) / 86400000.0)::int8
                        + 1) * 86400000
                    INTO upper_ms FROM events_legacy;
                CREATE UNIQUE INDEX events_legacy_site_event_ts ON events_legacy (site, event_id, client_ts_ms);
                DROP INDEX events_legacy_site_event;
                EXECUTE format('ALTER TABLE events ATTACH PARTITION events_legacy FOR VALUES FROM (MINVALUE) TO (%s)',
                               upper_ms);
            ELSE
                DROP TABLE events_legacy;
            END IF;
            CREATE TABLE events_default PARTITION OF events DEFAULT;
            CREATE INDEX events_default_received ON events_default (received_ms);
        END
        $$;
    "#,
    },
    Migration {
        // Error groups from rollups (issue #18, rollup.rs): the `group*` kinds need each group's first and
        // last client time, kept exact by min/max merges (NULL in the other kinds' rows; a nullable column
        // without a default rewrites no row on either engine). A group's sample and occurrences still read
        // events, through an index of errors alone by site, group and client time, newest first (errors are
        // a small share of events, so few inserts touch it). Building it reads the whole table once, inside
        // the migration's transaction. Backfill row 2 counts the group kinds of the errors stored before
        // (those received before its `until_ms`; row 1 keeps counting the other kinds), and has nothing to
        // do in a store without grouped errors.
        version: 12,
        sqlite: r#"
        ALTER TABLE rollups ADD COLUMN first_ms INTEGER;
        ALTER TABLE rollups ADD COLUMN last_ms INTEGER;
        CREATE INDEX events_errors ON events (site, fingerprint, client_ts_ms DESC, event_id)
            WHERE event_type = 'error';
        INSERT INTO rollup_backfill (id, until_ms, cursor_site, cursor_id, done)
            SELECT 2,
                   CASE WHEN g THEN CAST(unixepoch('subsec') * 1000 AS INTEGER) ELSE -9223372036854775808 END,
                   '', '0', CASE WHEN g THEN 0 ELSE 1 END
            FROM (SELECT EXISTS (SELECT 1 FROM events
                                 WHERE event_type = 'error' AND fingerprint IS NOT NULL) AS g);
    "#,
        postgres: r#"
        ALTER TABLE rollups ADD COLUMN first_ms BIGINT;
        ALTER TABLE rollups ADD COLUMN last_ms BIGINT;
        CREATE INDEX events_errors ON events (site, fingerprint, client_ts_ms DESC, event_id)
            WHERE event_type = 'error';
        INSERT INTO rollup_backfill (id, until_ms, cursor_site, cursor_id, done)
            SELECT 2,
                   CASE WHEN g THEN (extract(epoch FROM clock_timestamp()) * 1000)::int8
                        ELSE -9223372036854775808 END,
                   '', '00000000-0000-0000-0000-000000000000', CASE WHEN g THEN 0 ELSE 1 END
            FROM (SELECT EXISTS (SELECT 1 FROM events
                                 WHERE event_type = 'error' AND fingerprint IS NOT NULL) AS g) e;
    "#,
    },
];

/// The idempotency key's columns, the conflict target of the inserts (and of the spool's drain): an event id
/// is unique per site (migration 8); on PostgreSQL with the client timestamp, the partition key, which a
/// unique index of a partitioned table must hold (migration 11; a retry carries the same timestamp).
pub(crate) fn event_key_columns(dialect: super::migrate::Dialect) -> &'static str {
    match dialect {
        super::migrate::Dialect::Sqlite => "site, event_id",
        super::migrate::Dialect::Postgres => "site, event_id, client_ts_ms",
    }
}

/// PostgreSQL's migration texts up to `version`, with their versions: tests build a store as an earlier
/// build left it from them.
pub fn postgres_migrations_up_to(version: i64) -> Vec<(i64, &'static str)> {
    MIGRATIONS
        .iter()
        .filter(|m| m.version <= version)
        .map(|m| (m.version, m.postgres))
        .collect()
}

/// The newest schema version this build knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Text as stored: NUL characters become U+FFFD. PostgreSQL cannot store NUL in text, and one such event
/// must not fail the whole group; SQLite gets the same treatment so both backends hold the same data.
pub(crate) fn text_safe(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase_and_columns_match() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last, "migration {} out of order", m.version);
            last = m.version;
        }
        assert_eq!(latest_version(), last);
        assert_eq!(INSERT_COLUMNS.split(',').count(), INSERT_COLUMN_COUNT);
    }

    #[test]
    fn nul_replaced_other_text_borrowed() {
        assert_eq!(text_safe("a\0b"), "a\u{FFFD}b");
        assert!(matches!(
            text_safe("/users/:id"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
