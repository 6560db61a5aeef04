//! Helpers for tests of this and other crates: a fresh PostgreSQL database per test, dropped afterwards.
//!
//! The server comes from `URBANTWIN_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/postgres`). When it cannot be
//! reached, [`fresh_postgres`] panics under `CI=true` (CI must run the PostgreSQL tests) and otherwise prints one
//! line to stderr and answers None, so that a developer without PostgreSQL still runs the SQLite half.
//! Behind the `testing` feature: `twin-store = { workspace = true, features = ["testing"] }` in dev-dependencies.

use tokio_postgres::NoTls;

use crate::PostgresStore;

/// The server tests use unless `URBANTWIN_TEST_PG` says otherwise.
pub const DEFAULT_TEST_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The URL of the test server's maintenance database.
pub fn test_pg_url() -> String {
    std::env::var("URBANTWIN_TEST_PG").unwrap_or_else(|_| DEFAULT_TEST_PG.to_string())
}

/// A database made for one test; dropping it drops the database (best effort, connections closed by force).
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// The URL of this database, e.g. to open a second store on it (a second node) or to reopen it.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates an empty database on the test server; None (or a panic under CI) when the server is unreachable.
    pub async fn create() -> Option<TestDatabase> {
        let admin_url = test_pg_url();
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let client = match connect(&admin_url).await {
            Ok(c) => c,
            Err(e) if ci => panic!("PostgreSQL at {admin_url} is unreachable under CI: {e}"),
            Err(e) => {
                // once per test binary, and past the test harness's capture of eprintln!
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    use std::io::Write;
                    let _ = writeln!(
                        std::io::stderr(),
                        "PostgreSQL tests skipped: {admin_url} is unreachable ({e}); set CI=true to fail instead"
                    );
                });
                return None;
            }
        };
        let name = format!("ut_{}", uuid::Uuid::new_v4().simple());
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let url = with_database(&admin_url, &name);
        Some(TestDatabase {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // a runtime of its own: the test's runtime may be shutting down, and Drop cannot await
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let c = connect(&admin).await.ok()?;
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let connecting = tokio_postgres::connect(url, NoTls);
    let (client, conn) = tokio::time::timeout(std::time::Duration::from_secs(5), connecting)
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// `url` with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // the path starts at the first '/' after "scheme://authority"
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

/// A store on a fresh, empty database, with the guard that drops the database; None when PostgreSQL is unreachable
/// outside CI (see the module doc).
pub async fn fresh_postgres() -> Option<(PostgresStore, TestDatabase)> {
    let db = TestDatabase::create().await?;
    let store = PostgresStore::connect(db.url())
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {}", db.url(), e.detail));
    Some((store, db))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn urls_name_the_test_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "ut_1"),
            "postgres://postgres@127.0.0.1:5432/ut_1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/postgres?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
