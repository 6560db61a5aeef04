//! The schema's versioned migrations (`migrations/postgres/NNNN_name.sql`, embedded), applied at start-up in one
//! transaction under an advisory lock and recorded in `schema_migrations`; a database of a newer schema is refused.

use super::*;

/// The migrations this build knows, in order: (version, name, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "entity_locks",
        include_str!("../../migrations/postgres/0002_entity_locks.sql"),
    ),
    (
        3,
        "config_notify",
        include_str!("../../migrations/postgres/0003_config_notify.sql"),
    ),
    (
        4,
        "retention",
        include_str!("../../migrations/postgres/0004_retention.sql"),
    ),
    (
        5,
        "run_jobs",
        include_str!("../../migrations/postgres/0005_run_jobs.sql"),
    ),
    (
        6,
        "trust",
        include_str!("../../migrations/postgres/0006_trust.sql"),
    ),
    (
        7,
        "scenario_owner",
        include_str!("../../migrations/postgres/0007_scenario_owner.sql"),
    ),
    (
        8,
        "credentials_notify",
        include_str!("../../migrations/postgres/0008_credentials_notify.sql"),
    ),
    (
        9,
        "participation",
        include_str!("../../migrations/postgres/0009_participation.sql"),
    ),
    (
        10,
        "participation_threads",
        include_str!("../../migrations/postgres/0010_participation_threads.sql"),
    ),
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Applies the migrations this build knows and the database lacks, under the migration lock.
pub(super) async fn migrate(client: &mut deadpool_postgres::Object) -> Result<()> {
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_SPACE, &MIGRATION_LOCK],
    )
    .await
    .map_err(pg_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version bigint PRIMARY KEY,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(pg_err)?;
    let applied: Vec<i64> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let newest = applied.iter().copied().max().unwrap_or(0);
    if newest > SCHEMA_VERSION {
        return Err(db_err(format!(
            "the database was migrated by a newer urbantwin (schema {newest}, this one knows {SCHEMA_VERSION})"
        )));
    }
    if let Some(unknown) = applied
        .iter()
        .find(|v| !MIGRATIONS.iter().any(|(m, _, _)| m == *v))
    {
        return Err(db_err(format!(
            "the database holds migration {unknown}, which this urbantwin does not know: it was migrated by \
             another build"
        )));
    }
    for (version, name, sql) in pending(&applied) {
        tx.batch_execute(sql).await.map_err(|e| {
            db_err(format!(
                "migration {version} ({name}): {}",
                pg_err(e).detail
            ))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations(version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(pg_err)?;
    }
    tx.commit().await.map_err(pg_err)
}

/// The migrations not yet `applied`, in version order: every one the database lacks, not only those above its newest
/// (a migration numbered below one already applied, as when two lines of work each added one, is applied too).
fn pending(applied: &[i64]) -> Vec<&'static (i64, &'static str, &'static str)> {
    let mut todo: Vec<_> = MIGRATIONS
        .iter()
        .filter(|(v, _, _)| !applied.contains(v))
        .collect();
    todo.sort_by_key(|(v, _, _)| *v);
    todo
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_migrations_are_the_missing_ones_in_order() {
        let versions = |p: Vec<&(i64, &str, &str)>| p.iter().map(|m| m.0).collect::<Vec<_>>();
        let all: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
        assert_eq!(versions(pending(&[])), all);
        assert!(pending(&all).is_empty());
        // one below the newest applied is still applied
        let without_3: Vec<i64> = all.iter().copied().filter(|v| *v != 3).collect();
        assert_eq!(versions(pending(&without_3)), [3]);
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted, "MIGRATIONS are listed in version order");
    }
}
