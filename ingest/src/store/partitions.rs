//! PostgreSQL's day partitions of `events` (schema migration 11): which exist, creating them ahead of time,
//! and what retention drops whole or deletes row by row.
//!
//! One partition per UTC day of client time, `events_pYYYYMMDD`, FROM the day's first millisecond TO the
//! next day's. Besides them: `events_legacy` (a table made before partitioning, FROM MINVALUE) and
//! `events_default` (whatever no other partition covers). Several ingest nodes share one database: creating
//! and dropping hold [`LOCK_KEY`], and bound their wait for the table lock (see [`LOCK_TIMEOUT`]).

use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// One UTC day, ms.
pub(crate) const DAY_MS: i64 = 86_400_000;
/// Day partitions exist up to this many days after now: the next day's is there long before midnight, and
/// a day of failing upkeep loses nothing (its events would go to the default partition).
pub(crate) const AHEAD_DAYS: i64 = 2;
/// How often a store creates the partitions ahead.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(3600);
/// Serialises creating and dropping partitions between the nodes sharing a database.
const LOCK_KEY: i64 = 0x0076_616e_7461_6768;
/// Dropping a partition takes an ACCESS EXCLUSIVE lock on `events` (attaching one only SHARE UPDATE
/// EXCLUSIVE, but the default partition's ACCESS EXCLUSIVE): while it waits for a long stats query, the
/// writer waits behind it. So it waits this long at most and the next pass tries again.
const LOCK_TIMEOUT: &str = "1s";

/// One partition of `events`: its name and range, `None` for the default partition. An open end
/// (MINVALUE, MAXVALUE) is `i64::MIN` / `i64::MAX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Partition {
    pub name: String,
    pub range: Option<(i64, i64)>,
}

impl Partition {
    /// A day partition made by [`create_ahead`] (the legacy and default partitions are not).
    fn is_day(&self) -> bool {
        matches!(self.range, Some((lo, hi)) if hi.checked_sub(lo) == Some(DAY_MS) && lo.rem_euclid(DAY_MS) == 0)
    }
}

/// The day partition's name: `events_p20240229` for the day starting at `day_ms`.
pub(crate) fn day_name(day_ms: i64) -> String {
    // Days since 1970-01-01 to a civil date (H. Hinnant's `civil_from_days`).
    let z = day_ms.div_euclid(DAY_MS) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("events_p{y:04}{m:02}{d:02}")
}

/// The range of `pg_get_expr(relpartbound)`: `FOR VALUES FROM ('1') TO ('2')`, `FROM (MINVALUE)`, ...;
/// `None` for `DEFAULT` (or text this does not know).
fn parse_bound(expr: &str) -> Option<(i64, i64)> {
    let rest = expr.strip_prefix("FOR VALUES FROM (")?;
    let (from, rest) = rest.split_once(") TO (")?;
    let to = rest.strip_suffix(')')?;
    let value = |v: &str, open: i64| match v {
        "MINVALUE" | "MAXVALUE" => Some(open),
        v => v.trim_matches('\'').parse().ok(),
    };
    Some((value(from, i64::MIN)?, value(to, i64::MAX)?))
}

/// The partitions of `events`.
pub(crate) async fn list(
    c: &impl tokio_postgres::GenericClient,
) -> Result<Vec<Partition>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Partition {
                name: r.try_get(0)?,
                range: parse_bound(r.try_get(1)?),
            })
        })
        .collect()
}

/// The start of each day from `from_ms`'s to `to_ms`'s that no partition covers yet (none overlaps it).
fn days_missing(existing: &[Partition], from_ms: i64, to_ms: i64) -> Vec<i64> {
    let first = from_ms.div_euclid(DAY_MS) * DAY_MS;
    (first..=to_ms)
        .step_by(DAY_MS as usize)
        .filter(|&lo| {
            let hi = lo + DAY_MS;
            !existing
                .iter()
                .any(|p| p.range.is_some_and(|(a, b)| a < hi && lo < b))
        })
        .collect()
}

/// What a retention pass with `cutoff_ms` does: the partitions it drops (every event in them has a client
/// timestamp before the cutoff), and those it deletes rows from by receive time (the legacy and default
/// partitions, which are not days).
pub(crate) fn retention_plan(existing: &[Partition], cutoff_ms: i64) -> (Vec<&str>, Vec<&str>) {
    let (mut drop, mut rows) = (Vec::new(), Vec::new());
    for p in existing {
        match p.range {
            Some((_, hi)) if hi <= cutoff_ms => drop.push(p.name.as_str()),
            _ if !p.is_day() => rows.push(p.name.as_str()),
            _ => {}
        }
    }
    drop.sort_unstable();
    rows.sort_unstable();
    (drop, rows)
}

/// A partition's name as an SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Starts a transaction holding [`LOCK_KEY`], with [`LOCK_TIMEOUT`].
async fn locked(c: &mut Client) -> Result<tokio_postgres::Transaction<'_>, tokio_postgres::Error> {
    let tx = c.transaction().await?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        .await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    Ok(tx)
}

/// Creates the day partitions from `from_ms`'s day to [`AHEAD_DAYS`] after `now_ms` that do not exist yet;
/// their names. Each is made as a table of its own, then attached: attaching locks `events` only against
/// other schema changes, so writes and queries go on. A day the default partition already holds events of
/// cannot be attached; it is skipped with a warning, and its events stay in the default partition (deleted
/// by retention row by row).
pub(crate) async fn create_ahead(
    c: &mut Client,
    from_ms: i64,
    now_ms: i64,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let mut tx = locked(c).await?;
    let existing = list(&tx).await?;
    let mut created = Vec::new();
    for lo in days_missing(&existing, from_ms, now_ms + AHEAD_DAYS * DAY_MS) {
        let name = day_name(lo);
        let sp = tx.savepoint("day").await?;
        let made = sp
            .batch_execute(&format!(
                "CREATE TABLE {t} (LIKE events); \
                 ALTER TABLE events ATTACH PARTITION {t} FOR VALUES FROM ({lo}) TO ({hi})",
                t = ident(&name),
                hi = lo + DAY_MS
            ))
            .await;
        match made {
            Ok(()) => {
                sp.commit().await?;
                created.push(name);
            }
            Err(e) if e.code() == Some(&SqlState::CHECK_VIOLATION) => {
                sp.rollback().await?;
                tracing::warn!(
                    partition = %name,
                    "the default partition holds events of this day: they stay there"
                );
            }
            Err(e) => return Err(e),
        }
    }
    tx.commit().await?;
    Ok(created)
}

/// Drops the partition `name` (no error if another node just did).
pub(crate) async fn drop_partition(
    c: &mut Client,
    name: &str,
) -> Result<(), tokio_postgres::Error> {
    let tx = locked(c).await?;
    tx.batch_execute(&format!("DROP TABLE IF EXISTS {}", ident(name)))
        .await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(name: &str, lo: i64) -> Partition {
        Partition {
            name: name.into(),
            range: Some((lo, lo + DAY_MS)),
        }
    }

    #[test]
    fn day_names_are_utc_dates() {
        assert_eq!(day_name(0), "events_p19700101");
        // 2024-02-29 (a leap day) and the day after.
        assert_eq!(day_name(1_709_164_800_000), "events_p20240229");
        assert_eq!(day_name(1_709_164_800_000 + DAY_MS), "events_p20240301");
        // Any millisecond of the day names it; the last one of 2023 is 2023's.
        assert_eq!(day_name(1_704_067_199_999), "events_p20231231");
        assert_eq!(day_name(-1), "events_p19691231");
    }

    #[test]
    fn bounds_as_postgres_prints_them() {
        assert_eq!(
            parse_bound("FOR VALUES FROM ('1709164800000') TO ('1709251200000')"),
            Some((1_709_164_800_000, 1_709_251_200_000))
        );
        assert_eq!(
            parse_bound("FOR VALUES FROM (MINVALUE) TO ('86400000')"),
            Some((i64::MIN, 86_400_000))
        );
        assert_eq!(parse_bound("DEFAULT"), None);
    }

    #[test]
    fn missing_days_skip_those_covered() {
        // The legacy partition covers up to day 3; day 5 exists.
        let existing = [
            Partition {
                name: "events_legacy".into(),
                range: Some((i64::MIN, 3 * DAY_MS)),
            },
            day("events_p19700106", 5 * DAY_MS),
            Partition {
                name: "events_default".into(),
                range: None,
            },
        ];
        assert_eq!(
            days_missing(&existing, DAY_MS + 5, 7 * DAY_MS - 1),
            [3 * DAY_MS, 4 * DAY_MS, 6 * DAY_MS]
        );
    }

    #[test]
    fn retention_drops_days_ended_before_the_cutoff_and_deletes_rows_elsewhere() {
        let existing = [
            Partition {
                name: "events_legacy".into(),
                range: Some((i64::MIN, 3 * DAY_MS)),
            },
            day("events_p19700104", 3 * DAY_MS),
            day("events_p19700105", 4 * DAY_MS),
            Partition {
                name: "events_default".into(),
                range: None,
            },
        ];
        // A day ending exactly at the cutoff goes; the one the cutoff is in stays whole.
        assert_eq!(
            retention_plan(&existing, 4 * DAY_MS),
            (
                vec!["events_legacy", "events_p19700104"],
                vec!["events_default"]
            )
        );
        assert_eq!(
            retention_plan(&existing, 3 * DAY_MS - 1),
            (vec![], vec!["events_default", "events_legacy"])
        );
    }
}
