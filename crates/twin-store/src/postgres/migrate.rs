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
    let current: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(pg_err)?
        .get(0);
    if current > SCHEMA_VERSION {
        return Err(db_err(format!(
            "the database was migrated by a newer urbantwin (schema {current}, this one knows {SCHEMA_VERSION})"
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
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
