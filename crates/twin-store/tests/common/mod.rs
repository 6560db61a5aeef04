//! Opening a fresh store of each backend for the conformance suite, and the macro that runs a check against both.

use std::sync::Arc;

use twin_store::testing::{fresh_postgres, TestDatabase};
use twin_store::{PostgresStore, SqliteStore, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(TestDatabase),
}

/// A fresh store and what it lives in (a temporary directory or database, removed when this is dropped).
pub struct Opened {
    pub store: Arc<dyn Store>,
    place: Place,
}

impl Opened {
    #[allow(dead_code)]
    pub fn backend(&self) -> Backend {
        match &self.place {
            Place::Sqlite(_) => Backend::Sqlite,
            Place::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs SQL on the store's database directly, past the store (as someone with access to the database would).
    #[allow(dead_code)]
    pub async fn raw_sql(&self, sql: &str) -> Result<(), String> {
        match &self.place {
            Place::Sqlite(dir) => {
                let c = rusqlite::Connection::open(dir.path().join("t.db"))
                    .map_err(|e| e.to_string())?;
                c.busy_timeout(std::time::Duration::from_secs(10))
                    .map_err(|e| e.to_string())?;
                c.execute_batch(sql).map_err(|e| e.to_string())
            }
            Place::Postgres(db) => {
                let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                let driver = tokio::spawn(conn);
                let r = client
                    .batch_execute(sql)
                    .await
                    .map_err(|e| match e.as_db_error() {
                        Some(d) => d.message().to_string(),
                        None => e.to_string(),
                    });
                drop(client);
                let _ = driver.await;
                r
            }
        }
    }

    /// A new store on the same data (a restart, or a second node for PostgreSQL).
    pub async fn reopen(&self) -> Arc<dyn Store> {
        match &self.place {
            Place::Sqlite(dir) => Arc::new(SqliteStore::open(dir.path().join("t.db")).unwrap()),
            Place::Postgres(db) => Arc::new(PostgresStore::connect(db.url()).await.unwrap()),
        }
    }
}

/// A fresh store of a backend; None when PostgreSQL is unreachable outside CI (`twin_store::testing`).
pub async fn open(backend: Backend) -> Option<Opened> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(SqliteStore::open(dir.path().join("t.db")).unwrap());
            Some(Opened {
                store,
                place: Place::Sqlite(dir),
            })
        }
        Backend::Postgres => {
            let (store, db) = fresh_postgres().await?;
            Some(Opened {
                store: Arc::new(store),
                place: Place::Postgres(db),
            })
        }
    }
}

/// Runs each named check (`async fn check(o: Opened)`) as two tests, `sqlite::check` and `postgres::check`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let o = $crate::common::open($crate::common::Backend::Sqlite).await.unwrap();
                    super::$name(o).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(o) = $crate::common::open($crate::common::Backend::Postgres).await {
                        super::$name(o).await
                    }
                }
            )*
        }
    };
}
