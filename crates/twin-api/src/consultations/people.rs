//! A participant's own side: in-app notifications, the export and erasure of everything the twin keeps of them
//! (GDPR articles 15, 17 and 20), and the verification of an e-mail address by a code sent to it.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use twin_model::participation::{ContentState, ProposalStatus};
use twin_store::{MarkQuery, PartOp, PartQuery, ParticipationRecord, PutMode};

use super::contributions::{parse_comment, parse_proposal};
use super::limits::Limited;
use super::*;

/// Notifications listed at most.
const MAX_NOTIFICATIONS: usize = 200;
/// A code's life and tries.
const CODE_MINUTES: i64 = 30;
const CODE_TRIES: u64 = 5;

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn notification_json(r: &ParticipationRecord) -> Value {
    json!({
        "id": r.id,
        "at": super::time(r.created_at),
        "kind": r.doc["kind"],
        "consultation": r.consultation,
        "target": r.doc["target"],
        "text": r.doc["text"],
        "read": r.doc["read"].as_bool().unwrap_or(false),
    })
}

async fn my_records(
    state: &SharedState,
    kind: &str,
    me: &str,
    limit: usize,
) -> Result<Vec<ParticipationRecord>, ApiError> {
    Ok(state
        .store
        .participation_list(
            &PartQuery {
                kind: kind.into(),
                author: Some(me.into()),
                newest_first: true,
                limit,
                ..Default::default()
            },
            false,
        )
        .await?
        .0)
}

pub(crate) async fn notifications(
    State(state): State<SharedState>,
    Who(p): Who,
    RawQuery(raw): RawQuery,
) -> Answer {
    let params = Params::parse(raw.as_deref(), &["unread", "limit"])?;
    check_participant(&p, "notifications")?;
    let limit = params.usize("limit")?.unwrap_or(50).min(MAX_NOTIFICATIONS);
    let only_unread = params.bool("unread")?.unwrap_or(false);
    let recs = my_records(&state, NOTIFICATION, &subject(&p), MAX_NOTIFICATIONS).await?;
    let unread = recs
        .iter()
        .filter(|r| !r.doc["read"].as_bool().unwrap_or(false))
        .count();
    let items: Vec<Value> = recs
        .iter()
        .filter(|r| !only_unread || !r.doc["read"].as_bool().unwrap_or(false))
        .take(limit)
        .map(notification_json)
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({"unread": unread, "items": items}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadBody {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    all: bool,
}

pub(crate) async fn mark_read(
    State(state): State<SharedState>,
    Who(p): Who,
    body: Bytes,
) -> Answer {
    check_participant(&p, "notifications")?;
    let me = subject(&p);
    let b: ReadBody = body_as(&body)?;
    if !b.all && b.ids.is_empty() {
        return Err(bad("name the notifications read (ids) or all of them (all: true)").into());
    }
    let recs = my_records(
        &state,
        NOTIFICATION,
        &me,
        if b.all { 0 } else { MAX_NOTIFICATIONS * 5 },
    )
    .await?;
    let at = now();
    let ops: Vec<PartOp> = recs
        .into_iter()
        .filter(|r| !r.doc["read"].as_bool().unwrap_or(false))
        .filter(|r| b.all || b.ids.contains(&r.id))
        .map(|mut r| {
            r.doc["read"] = json!(true);
            r.modified_at = at;
            PartOp::Put {
                record: r,
                mode: PutMode::Replace,
            }
        })
        .collect();
    let n = ops.len();
    if n > 0 {
        write(&state, ops).await?;
    }
    Ok(json(StatusCode::OK, &json!({"read": n})))
}

/// Everything the twin keeps of the caller's participation, as one document.
pub(crate) async fn export(State(state): State<SharedState>, Who(p): Who) -> Answer {
    crate::auth::require_signed_in(&p)?;
    let me = subject(&p);
    let account = state.store.get_account(&me).await?;
    let mut out = json!({
        "exportedAt": super::time(now()),
        "account": account.as_ref().map(crate::auth::account_json),
    });
    for (key, kind) in [
        ("comments", COMMENT),
        ("proposals", PROPOSAL),
        ("notifications", NOTIFICATION),
    ] {
        let recs = my_records(&state, kind, &me, 0).await?;
        out[key] = Value::Array(
            recs.iter()
                .map(|r| {
                    json!({"id": r.id, "consultation": r.consultation, "createdAt": super::time(r.created_at),
                           "modifiedAt": super::time(r.modified_at), "content": r.doc})
                })
                .collect(),
        );
    }
    let marks = state
        .store
        .participation_marks(&MarkQuery {
            author: Some(me.clone()),
            ..Default::default()
        })
        .await?;
    let mut by_kind: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for m in marks {
        by_kind.entry(m.kind.clone()).or_default().push(json!({
            "target": m.target, "consultation": m.scope, "value": m.value, "at": super::time(m.at)
        }));
    }
    for (key, kind) in [
        ("votes", VOTE),
        ("supports", SUPPORT),
        ("stances", STANCE),
        ("surveyAnswers", SURVEY),
        ("reports", FLAG),
        ("follows", FOLLOW),
    ] {
        out[key] = Value::Array(by_kind.remove(kind).unwrap_or_default());
    }
    out["emailVerified"] = json!(!my_records(&state, EMAIL, &me, 1).await?.is_empty());
    out["scenarios"] = Value::Array(
        state
            .store
            .list_scenarios()
            .await?
            .into_iter()
            .filter(|s| s.owner.as_deref() == Some(me.as_str()))
            .map(|s| json!({"id": s.id, "document": s.document, "createdAt": super::time(s.created_at)}))
            .collect(),
    );
    let mut resp = json(StatusCode::OK, &out);
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!(
        "attachment; filename=\"urbantwin-{}.json\"",
        me.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '.',
            "_"
        )
    )) {
        resp.headers_mut()
            .insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseBody {
    #[serde(default)]
    password: Option<String>,
}

/// Erases the caller: their marks, notifications and verified address go, their comments stay in their threads as
/// deleted (no text, no author), their proposals lose text and author (and are withdrawn unless the planners have
/// decided on them), their scenarios are deleted, and so is their account.
pub(crate) async fn erase(State(state): State<SharedState>, Who(p): Who, body: Bytes) -> Answer {
    crate::auth::require_signed_in(&p)?;
    let me = subject(&p);
    let account = state.store.get_account(&me).await?;
    if let Some(hash) = account.as_ref().and_then(|a| a.password_hash.clone()) {
        let b: EraseBody = if body.is_empty() {
            EraseBody { password: None }
        } else {
            body_as(&body)?
        };
        let Some(pw) = b.password else {
            return Err(
                bad("erasing your account needs your password (password) to confirm").into(),
            );
        };
        let ok = tokio::task::spawn_blocking(move || twin_auth::password::verify(&pw, &hash))
            .await
            .unwrap_or(false);
        if !ok {
            return Err(ApiError::new(ErrorKind::AccessDenied, "the password is not right").into());
        }
    }
    let at = now();
    let mut ops = Vec::new();
    let (mut comments, mut proposals) = (0, 0);
    for mut r in my_records(&state, COMMENT, &me, 0).await? {
        let mut d = parse_comment(&r)?;
        d.state = ContentState::Deleted;
        d.body.clear();
        d.location = None;
        d.author_name = None;
        d.hidden = None;
        r.doc = json!(d);
        r.author = None;
        r.modified_at = at;
        comments += 1;
        ops.push(PartOp::Put {
            record: r,
            mode: PutMode::Replace,
        });
    }
    for mut r in my_records(&state, PROPOSAL, &me, 0).await? {
        let mut d = parse_proposal(&r)?;
        if matches!(
            d.status,
            ProposalStatus::Submitted | ProposalStatus::Evaluating
        ) {
            d.status = ProposalStatus::Withdrawn;
        }
        d.title.clear();
        d.body.clear();
        d.author_name = None;
        d.scenario = None;
        r.doc = json!(d);
        r.author = None;
        r.modified_at = at;
        proposals += 1;
        ops.push(PartOp::Put {
            record: r,
            mode: PutMode::Replace,
        });
    }
    // a moderator's decisions stay in the public log and on what they hid, without who took them
    let entries = my_records(&state, MODERATION, &me, 0).await?;
    let decisions = entries.len();
    // what they hid, each read once (a contribution may have been hidden, restored and hidden again)
    let targets: std::collections::BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e.doc["target"].as_str())
        .collect();
    for target in targets {
        let Ok((kind, id)) = super::moderation::parse_target(target) else {
            continue;
        };
        if let Some(mut hid) = state.store.participation_get(kind, id).await? {
            if hid.doc["hidden"]["by"].as_str() == Some(me.as_str()) {
                hid.doc["hidden"]["by"] = Value::Null;
                ops.push(PartOp::Put {
                    record: hid,
                    mode: PutMode::Replace,
                });
            }
        }
    }
    for mut entry in entries {
        entry.author = None;
        ops.push(PartOp::Put {
            record: entry,
            mode: PutMode::Replace,
        });
    }
    for kind in [NOTIFICATION, EMAIL] {
        for r in my_records(&state, kind, &me, 0).await? {
            ops.push(PartOp::Delete {
                kind: kind.into(),
                id: r.id,
            });
        }
    }
    ops.push(PartOp::Delete {
        kind: EMAIL_CODE.into(),
        id: me.clone(),
    });
    ops.push(PartOp::UnmarkAuthor { author: me.clone() });
    let out = write(&state, ops).await?;
    let marks = out.last().map_or(0, |o| o.count);
    let mut scenarios = 0;
    for s in state.store.list_scenarios().await? {
        if s.owner.as_deref() == Some(me.as_str()) && state.store.delete_scenario(&s.id).await? {
            scenarios += 1;
        }
    }
    let had_account = account.is_some() && state.store.delete_account(&me).await?;
    state
        .store
        .append_audit(
            &me,
            "account.erase",
            &me,
            json!({"comments": comments, "proposals": proposals, "marks": marks, "scenarios": scenarios,
                   "moderation": decisions, "account": had_account}),
        )
        .await?;
    let mut resp = json(
        StatusCode::OK,
        &json!({"erased": me, "comments": comments, "proposals": proposals, "marks": marks, "scenarios": scenarios,
                "moderation": decisions, "account": had_account}),
    );
    // the session cookie of an account that is gone
    if let Ok(v) = axum::http::HeaderValue::from_str(&twin_auth::session::clear_cookie(
        state.config.public_url.starts_with("https://"),
    )) {
        resp.headers_mut().insert(axum::http::header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailBody {
    email: String,
}

/// A plausible address: one `@`, a dot in the domain, no spaces or control characters, at most 254 characters.
fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    e.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && e.chars()
            .all(|c| c.is_ascii_graphic() && c != '<' && c != '>' && c != ',' && c != ';')
}

/// `GET /api/me/email`: the caller's verified address, and the one waiting for its code (if any).
pub(crate) async fn email_status(State(state): State<SharedState>, Who(p): Who) -> Answer {
    crate::auth::require_signed_in(&p)?;
    let me = subject(&p);
    let verified = !my_records(&state, EMAIL, &me, 1).await?.is_empty();
    let address = if verified {
        state.store.get_account(&me).await?.and_then(|a| a.email)
    } else {
        None
    };
    let pending = state
        .store
        .participation_get(EMAIL_CODE, &me)
        .await?
        .and_then(|r| {
            let tries = code_tries(&r)?;
            Some(json!({"email": r.doc["email"], "expiresAt": r.doc["expires"], "triesLeft": CODE_TRIES - tries}))
        });
    Ok(json(
        StatusCode::OK,
        &json!({"verified": verified, "email": address, "pending": pending}),
    ))
}

pub(crate) async fn email(State(state): State<SharedState>, Who(p): Who, body: Bytes) -> Answer {
    check_participant(&p, "adding an e-mail address")?;
    let me = subject(&p);
    if state.store.get_account(&me).await?.is_none() {
        return Err(conflict(
            "your account is kept by the identity provider: its address is verified there",
        )
        .into());
    }
    let Some(outbox) = state.config.mail_outbox.clone() else {
        return Err(ApiError::new(
            ErrorKind::OperationNotSupported,
            "this twin sends no e-mail (no mail outbox is configured), so it cannot verify an address",
        )
        .into());
    };
    let b: EmailBody = body_as(&body)?;
    let address = b.email.trim().to_ascii_lowercase();
    if !valid_email(&address) {
        return Err(bad(format!("{:?} is not an e-mail address", b.email)).into());
    }
    if let Some(r) = state
        .store
        .participation_get(EMAIL, &sha256_hex(&address))
        .await?
    {
        if r.author.as_deref() != Some(me.as_str()) {
            return Err(conflict(
                "this address is verified for another account (one address, one account)",
            )
            .into());
        }
    }
    state.participation.limits.take(&me, Limited::EmailCode)?;
    let code = format!("{:06}", uuid::Uuid::new_v4().as_u128() % 1_000_000);
    let at = now();
    write(
        &state,
        vec![PartOp::Put {
            record: ParticipationRecord {
                kind: EMAIL_CODE.into(),
                id: me.clone(),
                consultation: None,
                parent: None,
                author: Some(me.clone()),
                created_at: at,
                modified_at: at,
                doc: json!({"email": address, "code": sha256_hex(&format!("{me}:{code}")),
                            "expires": super::time(at + chrono::Duration::minutes(CODE_MINUTES)), "tries": 0}),
            },
            mode: PutMode::Upsert,
        }],
    )
    .await?;
    let message = format!(
        "From: {from}\r\nTo: {address}\r\nSubject: Your urbantwin code: {code}\r\nDate: {date}\r\nMessage-ID: <{id}@urbantwin>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Your code to verify this address for the account {me} is {code}.\r\nIt is valid for {CODE_MINUTES} minutes.\r\n\
         If you did not ask for it, ignore this message.\r\n",
        from = state.config.mail_from,
        date = at.to_rfc2822(),
        id = uuid::Uuid::new_v4().simple(),
    );
    // written whole, then renamed: the mail system never picks up half a message
    let name = format!(
        "{}-{}.eml",
        at.timestamp_millis(),
        uuid::Uuid::new_v4().simple()
    );
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&outbox)?;
        let tmp = outbox.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, message)?;
        std::fs::rename(&tmp, outbox.join(&name))
    })
    .await
    .map_err(|e| ApiError::new(ErrorKind::InternalError, e.to_string()))?;
    written
        .map_err(|e| ApiError::new(ErrorKind::InternalError, format!("the mail outbox: {e}")))?;
    Ok(json(
        StatusCode::ACCEPTED,
        &json!({"email": address, "sent": true, "expiresInMinutes": CODE_MINUTES}),
    ))
}

/// The tries spent on a code that can still be tried (not expired, tries left); None for one that cannot.
fn code_tries(rec: &ParticipationRecord) -> Option<u64> {
    let expires = rec.doc["expires"]
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())?;
    let tries = rec.doc["tries"].as_u64().unwrap_or(0);
    (expires > Utc::now() && tries < CODE_TRIES).then_some(tries)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    code: String,
}

pub(crate) async fn verify_email(
    State(state): State<SharedState>,
    Who(p): Who,
    body: Bytes,
) -> Answer {
    check_participant(&p, "verifying an e-mail address")?;
    let me = subject(&p);
    let b: CodeBody = body_as(&body)?;
    let code = b.code.trim();
    // a typing slip (not six digits) is not a guess: it costs no try
    if code.len() != 6 || !code.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad("the code is the six digits of the message we sent").into());
    }
    let Some(mut rec) = state.store.participation_get(EMAIL_CODE, &me).await? else {
        return Err(ApiError::not_found(
            "no code was sent to you: ask for one (POST /api/me/email)",
        )
        .into());
    };
    let Some(tries) = code_tries(&rec) else {
        write(
            &state,
            vec![PartOp::Delete {
                kind: EMAIL_CODE.into(),
                id: me.clone(),
            }],
        )
        .await?;
        return Err(
            conflict("the code has expired or was tried too often: ask for a new one").into(),
        );
    };
    let given = sha256_hex(&format!("{me}:{code}"));
    let expected = rec.doc["code"].as_str().unwrap_or_default().to_string();
    // compared in constant time over the hashes
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0;
    if !same {
        rec.doc["tries"] = json!(tries + 1);
        write(
            &state,
            vec![PartOp::Put {
                record: rec,
                mode: PutMode::Replace,
            }],
        )
        .await?;
        return Err(bad(match CODE_TRIES - tries - 1 {
            0 => "the code is not right (0 tries left): ask for a new one".to_string(),
            1 => "the code is not right (1 try left)".to_string(),
            n => format!("the code is not right ({n} tries left)"),
        })
        .into());
    }
    let address = rec.doc["email"].as_str().unwrap_or_default().to_string();
    let at = now();
    // an address verified before for this account is replaced
    let mut ops: Vec<PartOp> = my_records(&state, EMAIL, &me, 0)
        .await?
        .into_iter()
        .map(|r| PartOp::Delete {
            kind: EMAIL.into(),
            id: r.id,
        })
        .collect();
    ops.push(PartOp::Put {
        record: ParticipationRecord {
            kind: EMAIL.into(),
            id: sha256_hex(&address),
            consultation: None,
            parent: None,
            author: Some(me.clone()),
            created_at: at,
            modified_at: at,
            doc: json!({"verifiedAt": super::time(at)}),
        },
        mode: PutMode::Create,
    });
    ops.push(PartOp::Delete {
        kind: EMAIL_CODE.into(),
        id: me.clone(),
    });
    match write(&state, ops).await {
        Ok(_) => {}
        Err(e) if e.0.kind == ErrorKind::AlreadyExists => {
            return Err(conflict(
                "this address is verified for another account (one address, one account)",
            )
            .into())
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(mut a) = state.store.get_account(&me).await? {
        a.email = Some(address.clone());
        a.updated_at = Utc::now();
        state.store.put_account(a, false).await?;
    }
    state
        .store
        .append_audit(&me, "account.email.verify", &me, json!({}))
        .await?;
    Ok(json(StatusCode::OK, &json!({"email": address, "verified": true})).into_response())
}
