//! Moderation in the open: participants flag a comment or proposal, moderators see the flagged ones in a queue and
//! hide, restore or dismiss them with a reason, and every decision goes to a public log (and the audit log).

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use twin_model::participation::{
    self as part, ContentState, FlagReason, Hiding, LangText, ModerationAction,
};
use twin_store::{MarkQuery, PartOp, PartQuery, ParticipationMark, ParticipationRecord, PutMode};

use super::contributions::{comment_view, parse_comment, parse_proposal, proposal_view, record_in};
use super::limits::Limited;
use super::*;

/// A contribution named as `comment:<id>` or `proposal:<id>`.
pub(crate) fn parse_target(t: &str) -> Result<(&'static str, &str), ApiError> {
    match t.split_once(':') {
        Some(("comment", id)) if !id.is_empty() => Ok((COMMENT, id)),
        Some(("proposal", id)) if !id.is_empty() => Ok((PROPOSAL, id)),
        _ => Err(bad(format!("target {t:?}: comment:<id> or proposal:<id>"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlagBody {
    target: String,
    reason: FlagReason,
    #[serde(default)]
    note: Option<String>,
}

pub(crate) async fn flag(
    State(state): State<SharedState>,
    Who(p): Who,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    check_participant(&p, "reporting a contribution")?;
    let me = subject(&p);
    load(&state, &p, &id).await?;
    let f: FlagBody = body_as(&body)?;
    let (kind, tid) = parse_target(&f.target)?;
    let note = match f.note.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => Some(part::check_text(n, "note", 500).map_err(bad)?),
        None => None,
    };
    let r = record_in(&state, kind, &id, tid).await?;
    if r.author.as_deref() == Some(me.as_str()) {
        return Err(conflict("you cannot report your own contribution").into());
    }
    let already = state
        .store
        .participation_marks(&MarkQuery {
            kind: Some(FLAG.into()),
            targets: Some(vec![f.target.clone()]),
            author: Some(me.clone()),
            limit: 1,
            ..Default::default()
        })
        .await?;
    if !already.is_empty() {
        return Err(conflict(format!("you already reported {}", f.target)).into());
    }
    state.participation.limits.take(&me, Limited::Vote)?;
    write(
        &state,
        vec![PartOp::Mark {
            mark: ParticipationMark {
                kind: FLAG.into(),
                target: f.target.clone(),
                author: me,
                scope: id.clone(),
                value: json!({"reason": f.reason, "note": note}),
                at: now(),
            },
            limit: None,
        }],
    )
    .await?;
    Ok(json(
        StatusCode::CREATED,
        &json!({"target": f.target, "reason": f.reason, "reported": true}),
    ))
}

fn check_moderator(p: &twin_model::policy::Principal) -> Result<(), ApiError> {
    if part::may_moderate(p) {
        Ok(())
    } else {
        Err(denied(p, "moderation is for moderators and administrators"))
    }
}

/// The contribution behind a flag target, shown with its text (for moderators).
async fn item(
    state: &SharedState,
    p: &twin_model::policy::Principal,
    target: &str,
) -> Result<Option<(ParticipationRecord, Value)>, ApiError> {
    let (kind, id) = parse_target(target)?;
    let Some(rec) = state.store.participation_get(kind, id).await? else {
        return Ok(None);
    };
    let v = if kind == COMMENT {
        comment_view(&rec, &parse_comment(&rec)?, p, (0, 0), 0, 0)
    } else {
        proposal_view(&rec, &parse_proposal(&rec)?, p, 0, false)
    };
    Ok(Some((rec, v)))
}

pub(crate) async fn queue(
    State(state): State<SharedState>,
    Who(p): Who,
    RawQuery(raw): RawQuery,
) -> Answer {
    let params = Params::parse(raw.as_deref(), &["consultation", "limit"])?;
    check_moderator(&p)?;
    let limit = params.usize("limit")?.unwrap_or(100).min(1000);
    let scopes: Vec<String> = match params.get("consultation") {
        Some(c) => vec![c.to_string()],
        None => state
            .store
            .participation_list(
                &PartQuery {
                    kind: CONSULTATION.into(),
                    ..Default::default()
                },
                false,
            )
            .await?
            .0
            .into_iter()
            .map(|r| r.id)
            .collect(),
    };
    let mut flagged: Vec<(String, String, u64, BTreeMap<String, u64>)> = Vec::new();
    for scope in &scopes {
        let mut per: HashMap<String, (u64, BTreeMap<String, u64>)> = HashMap::new();
        let marks = state
            .store
            .participation_marks(&MarkQuery {
                kind: Some(FLAG.into()),
                scope: Some(scope.clone()),
                ..Default::default()
            })
            .await?;
        for m in marks {
            let e = per.entry(m.target).or_default();
            e.0 += 1;
            let reason = m.value["reason"].as_str().unwrap_or("other").to_string();
            *e.1.entry(reason).or_default() += 1;
        }
        flagged.extend(per.into_iter().map(|(t, (n, r))| (scope.clone(), t, n, r)));
    }
    flagged.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)));
    let mut out = Vec::new();
    for (scope, target, n, reasons) in flagged.into_iter().take(limit) {
        let Some((_, v)) = item(&state, &p, &target).await? else {
            continue;
        };
        out.push(json!({"target": target, "consultation": scope, "flags": n, "reasons": reasons, "item": v}));
    }
    Ok(json(StatusCode::OK, &Value::Array(out)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActBody {
    target: String,
    action: ModerationAction,
    #[serde(default)]
    reason: String,
}

pub(crate) async fn act(State(state): State<SharedState>, Who(p): Who, body: Bytes) -> Answer {
    check_moderator(&p)?;
    let me = subject(&p);
    let a: ActBody = body_as(&body)?;
    let (kind, tid) = parse_target(&a.target)?;
    let reason = match a.action {
        ModerationAction::Dismiss if a.reason.trim().is_empty() => String::new(),
        _ => part::check_text(&a.reason, "reason", 500).map_err(|e| {
            bad(format!(
                "{e}: hiding or restoring needs a reason, shown in the public log"
            ))
        })?,
    };
    let rec = state
        .store
        .participation_get(kind, tid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{} does not exist", a.target)))?;
    let consultation = rec.consultation.clone().unwrap_or_default();
    let at = now();
    let mut doc = rec.doc.clone();
    let current: ContentState = serde_json::from_value(doc["state"].clone()).unwrap_or_default();
    match a.action {
        ModerationAction::Hide => {
            if current == ContentState::Deleted {
                return Err(conflict(format!("{} was deleted by its author", a.target)).into());
            }
            doc["state"] = json!(ContentState::Hidden);
            doc["hidden"] = json!(Hiding {
                reason: reason.clone(),
                by: Some(me.clone()),
                at,
            });
        }
        ModerationAction::Restore => {
            if current != ContentState::Hidden {
                return Err(conflict(format!("{} is not hidden", a.target)).into());
            }
            doc["state"] = json!(ContentState::Visible);
            doc["hidden"] = Value::Null;
        }
        ModerationAction::Dismiss => {}
    }
    let flags = state
        .store
        .participation_tally(FLAG, Some(std::slice::from_ref(&a.target)), None, false)
        .await?
        .first()
        .map_or(0, |t| t.count);
    let mut ops = Vec::new();
    if a.action != ModerationAction::Dismiss {
        ops.push(PartOp::Put {
            record: ParticipationRecord {
                modified_at: at,
                doc,
                ..rec.clone()
            },
            mode: PutMode::Replace,
        });
    }
    ops.push(PartOp::UnmarkTarget {
        kind: FLAG.into(),
        target: a.target.clone(),
    });
    let entry = ParticipationRecord {
        kind: MODERATION.into(),
        id: new_id("md"),
        consultation: Some(consultation.clone()),
        parent: None,
        author: Some(me.clone()),
        created_at: at,
        modified_at: at,
        doc: json!({"target": a.target, "action": a.action, "reason": reason, "flags": flags}),
    };
    ops.push(PartOp::Put {
        record: entry.clone(),
        mode: PutMode::Create,
    });
    if let Some(author) = rec
        .author
        .as_deref()
        .filter(|_| a.action != ModerationAction::Dismiss)
    {
        let (en, fi) = match a.action {
            ModerationAction::Hide => (
                "A moderator hid your contribution",
                "Moderaattori piilotti osallistumisesi",
            ),
            _ => (
                "A moderator restored your contribution",
                "Moderaattori palautti osallistumisesi",
            ),
        };
        ops.push(notification(
            author,
            &consultation,
            "moderation",
            &a.target,
            LangText::from([
                ("en".into(), format!("{en}: {reason}")),
                ("fi".into(), format!("{fi}: {reason}")),
            ]),
        ));
    }
    write_for(&state, &p, &consultation, ops).await?;
    state
        .store
        .append_audit(
            &p.label(),
            match a.action {
                ModerationAction::Hide => "moderation.hide",
                ModerationAction::Restore => "moderation.restore",
                ModerationAction::Dismiss => "moderation.dismiss",
            },
            &a.target,
            json!({"consultation": consultation, "reason": reason, "flags": flags}),
        )
        .await?;
    Ok(json(StatusCode::CREATED, &log_entry(&entry, &p)))
}

fn log_entry(r: &ParticipationRecord, p: &twin_model::policy::Principal) -> Value {
    let mut v = json!({
        "id": r.id,
        "at": super::time(r.created_at),
        "consultation": r.consultation,
        "target": r.doc["target"],
        "action": r.doc["action"],
        "reason": r.doc["reason"],
        "flags": r.doc["flags"],
    });
    if p.is_admin() {
        v["moderator"] = json!(r.author);
    }
    v
}

pub(crate) async fn log(
    State(state): State<SharedState>,
    Who(p): Who,
    RawQuery(raw): RawQuery,
) -> Answer {
    let params = Params::parse(raw.as_deref(), &["consultation", "limit", "offset"])?;
    let limit = params.usize("limit")?.unwrap_or(50).min(500);
    let offset = params.usize("offset")?.unwrap_or(0);
    let q = PartQuery {
        kind: MODERATION.into(),
        consultation: params.get("consultation").map(String::from),
        newest_first: true,
        limit,
        offset,
        ..Default::default()
    };
    let (recs, total) = state.store.participation_list(&q, true).await?;
    // the log of a draft consultation is its planner's business
    let mut visible: HashMap<String, bool> = HashMap::new();
    let mut out = Vec::new();
    for r in &recs {
        let c = r.consultation.clone().unwrap_or_default();
        let seen = match visible.get(&c) {
            Some(s) => *s,
            None => {
                let s = load(&state, &p, &c).await.is_ok();
                visible.insert(c, s);
                s
            }
        };
        if seen {
            out.push(log_entry(r, &p));
        }
    }
    Ok(counted(out, total.unwrap_or(0)))
}
