//! Trust records in SQLite (see `crate::trust`): every write goes through the single writer, which also serializes
//! audit appends, so the chain never forks.

use rusqlite::types::Value as V;

use super::*;
use crate::trust::*;

const ACCOUNT_COLUMNS: &str =
    "id, display_name, email, password_hash, roles, member_groups, organisation, \
     disabled, created_ms, updated_ms";
const KEY_COLUMNS: &str =
    "id, account, name, hash, scopes, created_ms, expires_ms, revoked_ms, last_used_ms";
const SESSION_COLUMNS: &str = "hash, account, created_ms, expires_ms, last_seen_ms, user_agent";
const USAGE_COLUMNS: &str = "id, at_ms, dataset, principal, operation, entities, purpose, detail";
const AUDIT_COLUMNS: &str = "seq, at_ms, actor, action, target, detail, prev_hash, hash";

/// Audit records verify_audit reads per statement.
const AUDIT_CHUNK: i64 = 1000;

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Account, String, String)> {
    Ok((
        Account {
            id: r.get(0)?,
            display_name: r.get(1)?,
            email: r.get(2)?,
            password_hash: r.get(3)?,
            roles: Vec::new(),
            groups: Vec::new(),
            organisation: r.get(6)?,
            disabled: r.get(7)?,
            created_at: from_ms(r.get(8)?),
            updated_at: from_ms(r.get(9)?),
        },
        r.get(4)?,
        r.get(5)?,
    ))
}

fn account_of(row: (Account, String, String)) -> Result<Account> {
    let (mut a, roles, groups) = row;
    a.roles = from_json(&roles)?;
    a.groups = from_json(&groups)?;
    Ok(a)
}

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ApiKeyRecord, String)> {
    Ok((
        ApiKeyRecord {
            id: r.get(0)?,
            account_id: r.get(1)?,
            name: r.get(2)?,
            hash: r.get(3)?,
            scopes: Vec::new(),
            created_at: from_ms(r.get(5)?),
            expires_at: r.get::<_, Option<i64>>(6)?.map(from_ms),
            revoked_at: r.get::<_, Option<i64>>(7)?.map(from_ms),
            last_used_at: r.get::<_, Option<i64>>(8)?.map(from_ms),
        },
        r.get(4)?,
    ))
}

fn key_of(row: (ApiKeyRecord, String)) -> Result<ApiKeyRecord> {
    let (mut k, scopes) = row;
    k.scopes = from_json(&scopes)?;
    Ok(k)
}

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        hash: r.get(0)?,
        account_id: r.get(1)?,
        created_at: from_ms(r.get(2)?),
        expires_at: from_ms(r.get(3)?),
        last_seen_at: from_ms(r.get(4)?),
        user_agent: r.get(5)?,
    })
}

fn usage_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UsageRecord> {
    Ok(UsageRecord {
        id: r.get(0)?,
        at: from_ms(r.get(1)?),
        dataset: r.get(2)?,
        principal: r.get(3)?,
        operation: r.get(4)?,
        entities: r.get::<_, i64>(5)?.max(0) as u64,
        purpose: r.get(6)?,
        detail: r.get(7)?,
    })
}

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(AuditRecord, String)> {
    Ok((
        AuditRecord {
            seq: r.get(0)?,
            at: from_ms(r.get(1)?),
            actor: r.get(2)?,
            action: r.get(3)?,
            target: r.get(4)?,
            detail: Value::Null,
            prev_hash: r.get(6)?,
            hash: r.get(7)?,
        },
        r.get(5)?,
    ))
}

fn audit_of(row: (AuditRecord, String)) -> Result<AuditRecord> {
    let (mut a, detail) = row;
    a.detail = from_json(&detail)?;
    Ok(a)
}

fn account_exists(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM accounts WHERE id=?1")
        .map_err(db_err)?
        .query_row([id], |_| Ok(()))
        .optional()
        .map_err(db_err)?
        .is_some())
}

/// The WHERE clause of a usage query over `usage_log` (without `before_id`), and its arguments.
fn usage_where(
    datasets: &[String],
    principal: Option<&str>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> (String, Vec<V>) {
    let mut args: Vec<V> = datasets.iter().map(|d| V::Text(d.clone())).collect();
    let mut conds = vec![format!(
        "dataset IN ({})",
        vec!["?"; datasets.len()].join(",")
    )];
    if let Some(p) = principal {
        conds.push("principal = ?".into());
        args.push(V::Text(p.to_string()));
    }
    if let Some(t) = since {
        conds.push("at_ms >= ?".into());
        args.push(V::Integer(ms(t)));
    }
    if let Some(t) = until {
        conds.push("at_ms < ?".into());
        args.push(V::Integer(ms(t)));
    }
    (conds.join(" AND "), args)
}

impl SqliteStore {
    pub(super) async fn trust_put_account(&self, a: Account, create: bool) -> Result<()> {
        check_account(&a)?;
        let (roles, groups) = (to_json(&a.roles)?, to_json(&a.groups)?);
        self.write_job(false, move |conn, _| {
            check_create("account", &a.id, create, account_exists(conn, &a.id)?)?;
            if create {
                conn.execute(
                    &format!("INSERT INTO accounts({ACCOUNT_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"),
                    params![
                        a.id,
                        a.display_name,
                        a.email,
                        a.password_hash,
                        roles,
                        groups,
                        a.organisation,
                        a.disabled,
                        ms(a.created_at),
                        ms(a.updated_at)
                    ],
                )
                .map_err(db_err)?;
            } else {
                conn.execute(
                    "UPDATE accounts SET display_name=?2, email=?3, password_hash=?4, roles=?5, member_groups=?6,
                     organisation=?7, disabled=?8, updated_ms=?9 WHERE id=?1",
                    params![
                        a.id,
                        a.display_name,
                        a.email,
                        a.password_hash,
                        roles,
                        groups,
                        a.organisation,
                        a.disabled,
                        ms(a.updated_at)
                    ],
                )
                .map_err(db_err)?;
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn trust_get_account(&self, id: &str) -> Result<Option<Account>> {
        let id = id.to_string();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id=?1"),
                [&id],
                account_row,
            )
            .optional()
            .map_err(db_err)?
            .map(account_of)
            .transpose()
        })
        .await
    }

    pub(super) async fn trust_list_accounts(&self) -> Result<Vec<Account>> {
        self.read(|c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"
                ))
                .map_err(db_err)?;
            let rows = stmt.query_map([], account_row).map_err(db_err)?;
            rows.map(|r| account_of(r.map_err(db_err)?)).collect()
        })
        .await
    }

    pub(super) async fn trust_delete_account(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.write_job(false, move |conn, _| {
            // the foreign keys cascade too; explicit, so that it holds whatever the connection's settings
            conn.execute("DELETE FROM sessions WHERE account=?1", [&id])
                .map_err(db_err)?;
            conn.execute("DELETE FROM api_keys WHERE account=?1", [&id])
                .map_err(db_err)?;
            let n = conn
                .execute("DELETE FROM accounts WHERE id=?1", [&id])
                .map_err(db_err)?;
            Ok(n > 0)
        })
        .await
    }

    pub(super) async fn trust_count_accounts(&self) -> Result<u64> {
        self.read(|c| {
            let n: i64 = c
                .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
                .map_err(db_err)?;
            Ok(n as u64)
        })
        .await
    }

    pub(super) async fn trust_put_api_key(&self, k: ApiKeyRecord) -> Result<()> {
        let scopes = to_json(&k.scopes)?;
        self.write_job(false, move |conn, _| {
            if !account_exists(conn, &k.account_id)? {
                return Err(no_account(&k.account_id));
            }
            conn.execute(
                &format!(
                    "INSERT INTO api_keys({KEY_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)
                     ON CONFLICT(id) DO UPDATE SET account=excluded.account, name=excluded.name, hash=excluded.hash,
                     scopes=excluded.scopes, created_ms=excluded.created_ms, expires_ms=excluded.expires_ms,
                     revoked_ms=excluded.revoked_ms, last_used_ms=excluded.last_used_ms"
                ),
                params![
                    k.id,
                    k.account_id,
                    k.name,
                    k.hash,
                    scopes,
                    ms(k.created_at),
                    k.expires_at.map(ms),
                    k.revoked_at.map(ms),
                    k.last_used_at.map(ms)
                ],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    pub(super) async fn trust_get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id=?1"))
                .map_err(db_err)?
                .query_row([&id], key_row)
                .optional()
                .map_err(db_err)?
                .map(key_of)
                .transpose()
        })
        .await
    }

    pub(super) async fn trust_list_api_keys(
        &self,
        account_id: Option<&str>,
    ) -> Result<Vec<ApiKeyRecord>> {
        let account = account_id.map(str::to_string);
        self.read(move |c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE ?1 IS NULL OR account=?1 ORDER BY created_ms, id"
                ))
                .map_err(db_err)?;
            let rows = stmt.query_map([&account], key_row).map_err(db_err)?;
            rows.map(|r| key_of(r.map_err(db_err)?)).collect()
        })
        .await
    }

    pub(super) async fn trust_revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool> {
        let id = id.to_string();
        self.write_job(false, move |conn, _| {
            let n = conn
                .execute(
                    "UPDATE api_keys SET revoked_ms = coalesce(revoked_ms, ?2) WHERE id=?1",
                    params![id, ms(at)],
                )
                .map_err(db_err)?;
            Ok(n > 0)
        })
        .await
    }

    pub(super) async fn trust_touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        let id = id.to_string();
        // one small job; the writer group-commits concurrent touches with other writes
        self.write_job(false, move |conn, _| {
            conn.prepare_cached(
                "UPDATE api_keys SET last_used_ms = ?2 WHERE id=?1 AND (last_used_ms IS NULL OR last_used_ms < ?2)",
            )
            .map_err(db_err)?
            .execute(params![id, ms(at)])
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    pub(super) async fn trust_put_session(&self, s: SessionRecord) -> Result<()> {
        self.write_job(false, move |conn, _| {
            if !account_exists(conn, &s.account_id)? {
                return Err(no_account(&s.account_id));
            }
            conn.execute(
                &format!(
                    "INSERT INTO sessions({SESSION_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6)
                     ON CONFLICT(hash) DO UPDATE SET account=excluded.account, created_ms=excluded.created_ms,
                     expires_ms=excluded.expires_ms, last_seen_ms=excluded.last_seen_ms,
                     user_agent=excluded.user_agent"
                ),
                params![
                    s.hash,
                    s.account_id,
                    ms(s.created_at),
                    ms(s.expires_at),
                    ms(s.last_seen_at),
                    s.user_agent
                ],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    pub(super) async fn trust_get_session(&self, hash: &str) -> Result<Option<SessionRecord>> {
        let hash = hash.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE hash=?1"
            ))
            .map_err(db_err)?
            .query_row([&hash], session_row)
            .optional()
            .map_err(db_err)
        })
        .await
    }

    pub(super) async fn trust_delete_session(&self, hash: &str) -> Result<bool> {
        let hash = hash.to_string();
        self.write_job(false, move |conn, _| {
            let n = conn
                .execute("DELETE FROM sessions WHERE hash=?1", [&hash])
                .map_err(db_err)?;
            Ok(n > 0)
        })
        .await
    }

    pub(super) async fn trust_delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        self.write_job(false, move |conn, _| {
            let n = conn
                .execute("DELETE FROM sessions WHERE expires_ms <= ?1", [ms(now)])
                .map_err(db_err)?;
            Ok(n as u64)
        })
        .await
    }

    pub(super) async fn trust_record_usage(&self, records: Vec<UsageRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.write_job(false, move |conn, _| {
            let mut stmt = conn
                .prepare_cached(
                    "INSERT INTO usage_log(at_ms, dataset, principal, operation, entities, purpose, detail)
                     VALUES (?1,?2,?3,?4,?5,?6,?7)",
                )
                .map_err(db_err)?;
            for u in records {
                stmt.execute(params![
                    ms(u.at),
                    u.dataset,
                    u.principal,
                    u.operation,
                    u.entities.min(i64::MAX as u64) as i64,
                    u.purpose,
                    u.detail
                ])
                .map_err(db_err)?;
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn trust_usage(&self, q: &UsageQuery) -> Result<(u64, Vec<UsageRecord>)> {
        if q.datasets.is_empty() {
            return Ok((0, Vec::new()));
        }
        let (cond, args) = usage_where(&q.datasets, q.principal.as_deref(), q.since, q.until);
        let (before, limit) = (
            q.before_id.unwrap_or(i64::MAX),
            q.limit.min(i64::MAX as usize) as i64,
        );
        self.read(move |c| {
            let total: i64 = c
                .query_row(
                    &format!("SELECT count(*) FROM usage_log WHERE {cond}"),
                    rusqlite::params_from_iter(args.iter()),
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            let mut page_args = args;
            page_args.extend([V::Integer(before), V::Integer(limit)]);
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {USAGE_COLUMNS} FROM usage_log WHERE {cond} AND id < ? ORDER BY id DESC LIMIT ?"
                ))
                .map_err(db_err)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(page_args.iter()), usage_row)
                .map_err(db_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_err)?;
            Ok((total as u64, rows))
        })
        .await
    }

    pub(super) async fn trust_usage_summary(
        &self,
        datasets: &[String],
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<UsageSummaryRow>> {
        if datasets.is_empty() {
            return Ok(Vec::new());
        }
        let (cond, args) = usage_where(datasets, None, since, None);
        self.read(move |c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT dataset, principal, operation, count(*), sum(entities), min(at_ms), max(at_ms)
                     FROM usage_log WHERE {cond} GROUP BY dataset, principal, operation
                     ORDER BY dataset, principal, operation"
                ))
                .map_err(db_err)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    Ok(UsageSummaryRow {
                        dataset: r.get(0)?,
                        principal: r.get(1)?,
                        operation: r.get(2)?,
                        requests: r.get::<_, i64>(3)? as u64,
                        entities: r.get::<_, i64>(4)?.max(0) as u64,
                        first: from_ms(r.get(5)?),
                        last: from_ms(r.get(6)?),
                    })
                })
                .map_err(db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
        })
        .await
    }

    pub(super) async fn trust_append_audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: Value,
    ) -> Result<AuditRecord> {
        let (actor, action, target) = (actor.to_string(), action.to_string(), target.to_string());
        // the single writer serializes appends: the head read here is the last one appended
        self.write_job(false, move |conn, _| {
            let (seq, hash): (i64, String) = conn
                .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(db_err)?;
            let rec = AuditRecord::next((seq, &hash), Utc::now(), &actor, &action, &target, detail);
            conn.execute(
                &format!("INSERT INTO audit_log({AUDIT_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)"),
                params![
                    rec.seq,
                    ms(rec.at),
                    rec.actor,
                    rec.action,
                    rec.target,
                    canonical_json(&rec.detail),
                    rec.prev_hash,
                    rec.hash
                ],
            )
            .map_err(db_err)?;
            conn.execute(
                "UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1",
                params![rec.seq, rec.hash],
            )
            .map_err(db_err)?;
            Ok(rec)
        })
        .await
    }

    pub(super) async fn trust_audit(
        &self,
        after_seq: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>> {
        let (after, limit) = (
            after_seq.unwrap_or(i64::MIN),
            limit.min(i64::MAX as usize) as i64,
        );
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"
                ))
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![after, limit], audit_row)
                .map_err(db_err)?;
            rows.map(|r| audit_of(r.map_err(db_err)?)).collect()
        })
        .await
    }

    pub(super) async fn trust_verify_audit(&self) -> Result<AuditVerification> {
        self.read(|c| {
            // one read transaction: the head and every chunk come from the same snapshot
            c.execute_batch("BEGIN").map_err(db_err)?;
            let r = verify_chain(c);
            let _ = c.execute_batch("COMMIT");
            r
        })
        .await
    }
}

/// Walks the audit chain in chunks of [`AUDIT_CHUNK`] records (inside the caller's read transaction).
fn verify_chain(c: &Connection) -> Result<AuditVerification> {
    let head: (i64, String) = c
        .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(db_err)?
        .unwrap_or((0, GENESIS_HASH.to_string()));
    let mut check = ChainCheck::new();
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))
        .map_err(db_err)?;
    let mut after = i64::MIN;
    'walk: loop {
        let mut rows = stmt.query(params![after, AUDIT_CHUNK]).map_err(db_err)?;
        let mut n = 0;
        while let Some(row) = rows.next().map_err(db_err)? {
            n += 1;
            let (mut rec, detail) = audit_row(row).map_err(db_err)?;
            after = rec.seq;
            rec.detail = match serde_json::from_str(&detail) {
                Ok(d) => d,
                // unparsable detail cannot hash to what was stored
                Err(_) => Value::String(detail),
            };
            if !check.check(&rec) {
                break 'walk;
            }
        }
        if n < AUDIT_CHUNK {
            break;
        }
    }
    Ok(check.finish(head))
}
