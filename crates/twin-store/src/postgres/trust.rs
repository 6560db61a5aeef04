//! Trust records in PostgreSQL (see `crate::trust`, and migration 6). Audit appends of every node are serialized by
//! the row lock of the one-row chain head (`audit_head`, `SELECT .. FOR UPDATE`), held until the append commits.

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

fn account_of(r: &Row) -> Result<Account> {
    Ok(Account {
        id: r.get(0),
        display_name: r.get(1),
        email: r.get(2),
        password_hash: r.get(3),
        roles: from_json(r.get::<_, &str>(4))?,
        groups: from_json(r.get::<_, &str>(5))?,
        organisation: r.get(6),
        disabled: r.get(7),
        created_at: from_ms(r.get(8)),
        updated_at: from_ms(r.get(9)),
    })
}

fn key_of(r: &Row) -> Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: r.get(0),
        account_id: r.get(1),
        name: r.get(2),
        hash: r.get(3),
        scopes: from_json(r.get::<_, &str>(4))?,
        created_at: from_ms(r.get(5)),
        expires_at: r.get::<_, Option<i64>>(6).map(from_ms),
        revoked_at: r.get::<_, Option<i64>>(7).map(from_ms),
        last_used_at: r.get::<_, Option<i64>>(8).map(from_ms),
    })
}

fn session_of(r: &Row) -> SessionRecord {
    SessionRecord {
        hash: r.get(0),
        account_id: r.get(1),
        created_at: from_ms(r.get(2)),
        expires_at: from_ms(r.get(3)),
        last_seen_at: from_ms(r.get(4)),
        user_agent: r.get(5),
    }
}

fn usage_of(r: &Row) -> UsageRecord {
    UsageRecord {
        id: r.get(0),
        at: from_ms(r.get(1)),
        dataset: r.get(2),
        principal: r.get(3),
        operation: r.get(4),
        entities: r.get::<_, i64>(5).max(0) as u64,
        purpose: r.get(6),
        detail: r.get(7),
    }
}

/// An audit record from its row; a detail that does not parse is kept as the string it is (it then fails
/// verification, but can still be listed).
fn audit_of(r: &Row) -> AuditRecord {
    let detail: &str = r.get(5);
    AuditRecord {
        seq: r.get(0),
        at: from_ms(r.get(1)),
        actor: r.get(2),
        action: r.get(3),
        target: r.get(4),
        detail: serde_json::from_str(detail).unwrap_or_else(|_| Value::String(detail.into())),
        prev_hash: r.get(6),
        hash: r.get(7),
    }
}

/// A failed insert of a key or session: `ResourceNotFound` when its account is missing, else a storage error.
fn account_missing_or_pg_err(e: tokio_postgres::Error, account: &str) -> NgsiError {
    if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
        no_account(account)
    } else {
        pg_err(e)
    }
}

/// The WHERE clause of a usage query over `usage_log` (without `before_id`), with its parameters.
fn usage_where(
    params: &mut Params,
    datasets: &[String],
    principal: Option<&str>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> String {
    let mut conds = vec![format!(
        "dataset = ANY({}::text[])",
        params.add(datasets.to_vec())
    )];
    if let Some(p) = principal {
        conds.push(format!("principal = {}", params.add(p.to_string())));
    }
    if let Some(t) = since {
        conds.push(format!("at_ms >= {}", params.add(ms(t))));
    }
    if let Some(t) = until {
        conds.push(format!("at_ms < {}", params.add(ms(t))));
    }
    conds.join(" AND ")
}

impl PostgresStore {
    pub(super) async fn trust_put_account(&self, a: Account, create: bool) -> Result<()> {
        check_account(&a)?;
        let (roles, groups) = (to_json(&a.roles)?, to_json(&a.groups)?);
        let c = self.client().await?;
        let n = if create {
            c.execute(
                &format!(
                    "INSERT INTO accounts({ACCOUNT_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
                ),
                &[
                    &a.id,
                    &a.display_name,
                    &a.email,
                    &a.password_hash,
                    &roles,
                    &groups,
                    &a.organisation,
                    &a.disabled,
                    &ms(a.created_at),
                    &ms(a.updated_at),
                ],
            )
            .await
            .map_err(|e| taken_or_pg_err(e, "account", &a.id))?
        } else {
            c.execute(
                "UPDATE accounts SET display_name = $2, email = $3, password_hash = $4, roles = $5,
                 member_groups = $6, organisation = $7, disabled = $8, updated_ms = $9 WHERE id = $1",
                &[
                    &a.id,
                    &a.display_name,
                    &a.email,
                    &a.password_hash,
                    &roles,
                    &groups,
                    &a.organisation,
                    &a.disabled,
                    &ms(a.updated_at),
                ],
            )
            .await
            .map_err(pg_err)?
        };
        check_create("account", &a.id, create, !create && n > 0)
    }

    pub(super) async fn trust_get_account(&self, id: &str) -> Result<Option<Account>> {
        self.rows(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"),
            &[&id],
        )
        .await?
        .first()
        .map(account_of)
        .transpose()
    }

    pub(super) async fn trust_list_accounts(&self) -> Result<Vec<Account>> {
        self.rows(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"),
            &[],
        )
        .await?
        .iter()
        .map(account_of)
        .collect()
    }

    pub(super) async fn trust_delete_account(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        // the foreign keys cascade to its sessions and keys
        let n = self
            .client()
            .await?
            .execute("DELETE FROM accounts WHERE id = $1", &[&id])
            .await
            .map_err(pg_err)?;
        Ok(n > 0)
    }

    pub(super) async fn trust_count_accounts(&self) -> Result<u64> {
        let n: i64 = self.rows("SELECT count(*) FROM accounts", &[]).await?[0].get(0);
        Ok(n as u64)
    }

    pub(super) async fn trust_put_api_key(&self, k: ApiKeyRecord) -> Result<()> {
        let scopes = to_json(&k.scopes)?;
        self.client()
            .await?
            .execute(
                &format!(
                    "INSERT INTO api_keys({KEY_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)
                     ON CONFLICT (id) DO UPDATE SET account = excluded.account, name = excluded.name,
                     hash = excluded.hash, scopes = excluded.scopes, created_ms = excluded.created_ms,
                     expires_ms = excluded.expires_ms, revoked_ms = excluded.revoked_ms,
                     last_used_ms = excluded.last_used_ms"
                ),
                &[
                    &k.id,
                    &k.account_id,
                    &k.name,
                    &k.hash,
                    &scopes,
                    &ms(k.created_at),
                    &k.expires_at.map(ms),
                    &k.revoked_at.map(ms),
                    &k.last_used_at.map(ms),
                ],
            )
            .await
            .map_err(|e| account_missing_or_pg_err(e, &k.account_id))?;
        Ok(())
    }

    pub(super) async fn trust_get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        self.rows(
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"),
            &[&id],
        )
        .await?
        .first()
        .map(key_of)
        .transpose()
    }

    pub(super) async fn trust_list_api_keys(
        &self,
        account_id: Option<&str>,
    ) -> Result<Vec<ApiKeyRecord>> {
        self.rows(
            &format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE $1::text IS NULL OR account = $1
                 ORDER BY created_ms, id"
            ),
            &[&account_id],
        )
        .await?
        .iter()
        .map(key_of)
        .collect()
    }

    pub(super) async fn trust_revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE api_keys SET revoked_ms = coalesce(revoked_ms, $2) WHERE id = $1",
                &[&id, &ms(at)],
            )
            .await
            .map_err(pg_err)?;
        Ok(n > 0)
    }

    pub(super) async fn trust_touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        // writes only when the time moves forward, so a burst of requests with one key mostly reads
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "UPDATE api_keys SET last_used_ms = $2 WHERE id = $1 AND (last_used_ms IS NULL OR last_used_ms < $2)",
            )
            .await
            .map_err(pg_err)?;
        c.execute(&stmt, &[&id, &ms(at)]).await.map_err(pg_err)?;
        Ok(())
    }

    pub(super) async fn trust_put_session(&self, s: SessionRecord) -> Result<()> {
        self.client()
            .await?
            .execute(
                &format!(
                    "INSERT INTO sessions({SESSION_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6)
                     ON CONFLICT (hash) DO UPDATE SET account = excluded.account, created_ms = excluded.created_ms,
                     expires_ms = excluded.expires_ms, last_seen_ms = excluded.last_seen_ms,
                     user_agent = excluded.user_agent"
                ),
                &[
                    &s.hash,
                    &s.account_id,
                    &ms(s.created_at),
                    &ms(s.expires_at),
                    &ms(s.last_seen_at),
                    &s.user_agent,
                ],
            )
            .await
            .map_err(|e| account_missing_or_pg_err(e, &s.account_id))?;
        Ok(())
    }

    pub(super) async fn trust_get_session(&self, hash: &str) -> Result<Option<SessionRecord>> {
        Ok(self
            .rows(
                &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE hash = $1"),
                &[&hash],
            )
            .await?
            .first()
            .map(session_of))
    }

    pub(super) async fn trust_delete_session(&self, hash: &str) -> Result<bool> {
        let n = self
            .client()
            .await?
            .execute("DELETE FROM sessions WHERE hash = $1", &[&hash])
            .await
            .map_err(pg_err)?;
        Ok(n > 0)
    }

    pub(super) async fn trust_delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        self.client()
            .await?
            .execute("DELETE FROM sessions WHERE expires_ms <= $1", &[&ms(now)])
            .await
            .map_err(pg_err)
    }

    pub(super) async fn trust_record_usage(&self, records: Vec<UsageRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let at: Vec<i64> = records.iter().map(|u| ms(u.at)).collect();
        let dataset: Vec<&str> = records.iter().map(|u| u.dataset.as_str()).collect();
        let principal: Vec<&str> = records.iter().map(|u| u.principal.as_str()).collect();
        let operation: Vec<&str> = records.iter().map(|u| u.operation.as_str()).collect();
        let entities: Vec<i64> = records
            .iter()
            .map(|u| u.entities.min(i64::MAX as u64) as i64)
            .collect();
        let purpose: Vec<Option<&str>> = records.iter().map(|u| u.purpose.as_deref()).collect();
        let detail: Vec<Option<&str>> = records.iter().map(|u| u.detail.as_deref()).collect();
        // one statement (one transaction); ids follow the order given
        self.client()
            .await?
            .execute(
                "INSERT INTO usage_log(at_ms, dataset, principal, operation, entities, purpose, detail)
                 SELECT a, d, p, o, e, u, t
                 FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::text[])
                 WITH ORDINALITY AS r(a, d, p, o, e, u, t, n) ORDER BY n",
                &[
                    &at, &dataset, &principal, &operation, &entities, &purpose, &detail,
                ],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    pub(super) async fn trust_usage(&self, q: &UsageQuery) -> Result<(u64, Vec<UsageRecord>)> {
        if q.datasets.is_empty() {
            return Ok((0, Vec::new()));
        }
        let mut params = Params::default();
        let cond = usage_where(
            &mut params,
            &q.datasets,
            q.principal.as_deref(),
            q.since,
            q.until,
        );
        let total: i64 = self
            .rows(
                &format!("SELECT count(*) FROM usage_log WHERE {cond}"),
                &params.refs(),
            )
            .await?[0]
            .get(0);
        let before = params.add(q.before_id.unwrap_or(i64::MAX));
        let limit = params.add(q.limit.min(i64::MAX as usize) as i64);
        let rows = self
            .rows(
                &format!(
                    "SELECT {USAGE_COLUMNS} FROM usage_log WHERE {cond} AND id < {before}
                     ORDER BY id DESC LIMIT {limit}"
                ),
                &params.refs(),
            )
            .await?;
        Ok((total as u64, rows.iter().map(usage_of).collect()))
    }

    pub(super) async fn trust_usage_summary(
        &self,
        datasets: &[String],
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<UsageSummaryRow>> {
        if datasets.is_empty() {
            return Ok(Vec::new());
        }
        let mut params = Params::default();
        let cond = usage_where(&mut params, datasets, None, since, None);
        let rows = self
            .rows(
                &format!(
                    "SELECT dataset, principal, operation, count(*), sum(entities)::int8, min(at_ms), max(at_ms)
                     FROM usage_log WHERE {cond} GROUP BY dataset, principal, operation
                     ORDER BY dataset, principal, operation"
                ),
                &params.refs(),
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| UsageSummaryRow {
                dataset: r.get(0),
                principal: r.get(1),
                operation: r.get(2),
                requests: r.get::<_, i64>(3) as u64,
                entities: r.get::<_, i64>(4).max(0) as u64,
                first: from_ms(r.get(5)),
                last: from_ms(r.get(6)),
            })
            .collect())
    }

    pub(super) async fn trust_append_audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: Value,
    ) -> Result<AuditRecord> {
        let (actor, action, target) = (actor.to_string(), action.to_string(), target.to_string());
        self.in_tx(move |tx| {
            Box::pin(async move {
                // the head's row lock serializes appends of every node until this one commits; a waiting append
                // reads the head as the previous one left it
                let head = tx
                    .query_one(
                        "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
                        &[],
                    )
                    .await
                    .map_err(pg_err)?;
                let (seq, hash): (i64, String) = (head.get(0), head.get(1));
                let rec =
                    AuditRecord::next((seq, &hash), Utc::now(), &actor, &action, &target, detail);
                tx.execute(
                    &format!(
                        "INSERT INTO audit_log({AUDIT_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
                    ),
                    &[
                        &rec.seq,
                        &ms(rec.at),
                        &rec.actor,
                        &rec.action,
                        &rec.target,
                        &canonical_json(&rec.detail),
                        &rec.prev_hash,
                        &rec.hash,
                    ],
                )
                .await
                .map_err(pg_err)?;
                tx.execute(
                    "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
                    &[&rec.seq, &rec.hash],
                )
                .await
                .map_err(pg_err)?;
                Ok(rec)
            })
        })
        .await
    }

    pub(super) async fn trust_audit(
        &self,
        after_seq: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>> {
        let rows = self
            .rows(
                &format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
                ),
                &[
                    &after_seq.unwrap_or(i64::MIN),
                    &(limit.min(i64::MAX as usize) as i64),
                ],
            )
            .await?;
        Ok(rows.iter().map(audit_of).collect())
    }

    pub(super) async fn trust_verify_audit(&self) -> Result<AuditVerification> {
        let mut c = self.client().await?;
        // one snapshot for the head and every chunk, whatever is appended meanwhile
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_err)?;
        let head: (i64, String) = tx
            .query_opt("SELECT seq, hash FROM audit_head WHERE id = 1", &[])
            .await
            .map_err(pg_err)?
            .map(|r| (r.get(0), r.get(1)))
            .unwrap_or((0, GENESIS_HASH.to_string()));
        let stmt = tx
            .prepare(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
            ))
            .await
            .map_err(pg_err)?;
        let mut check = ChainCheck::new();
        let mut after = i64::MIN;
        'walk: loop {
            let rows = tx
                .query(&stmt, &[&after, &AUDIT_CHUNK])
                .await
                .map_err(pg_err)?;
            for r in &rows {
                let rec = audit_of(r);
                after = rec.seq;
                if !check.check(&rec) {
                    break 'walk;
                }
            }
            if (rows.len() as i64) < AUDIT_CHUNK {
                break;
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(check.finish(head))
    }
}
