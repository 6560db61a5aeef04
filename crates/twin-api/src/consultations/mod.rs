//! `/api/consultations`, `/api/moderation`, `/api/notifications`, `/api/me`: citizens take part in the twin's
//! scenarios (see docs/consultations.md). Handlers check who may act and turn requests into
//! [`twin_model::participation`] values kept as the store's participation records and marks.
//!
//! Records: `consultation` (doc = the [`Consultation`]), `comment` (record parent = the thread's root, doc =
//! [`CommentDoc`] with `replyTo` the comment answered), `proposal`, `notification` (author = the account it is for),
//! `moderation` (the public log), `email` (a verified address: id = its SHA-256, so one address has one account) and
//! `email-code`. Marks (unique per kind, target, author; scope = the consultation): `comment-vote`, `support`,
//! `stance` (a participant's latest stance per scenario, target `<consultation>/<scenario or _general>`), `survey`
//! (target `<consultation>/<survey>`), `flag` (target `comment:<id>` or `proposal:<id>`) and `follow`.

mod contributions;
mod limits;
mod moderation;
mod people;
pub mod results;
mod shared;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use twin_model::participation::{self as part, Action, Consultation};
use twin_model::policy::Principal;
use twin_model::{ErrorKind, NgsiError};
use twin_store::{
    MarkQuery, PartError, PartOp, PartOutcome, PartQuery, ParticipationRecord, PutMode,
};

use crate::error::ApiError;
use crate::params::Params;
use crate::{path_segment, SharedState};

pub use limits::{Limited, Limits};
pub use results::catalogue_entries;

pub(crate) const CONSULTATION: &str = "consultation";
pub(crate) const COMMENT: &str = "comment";
pub(crate) const PROPOSAL: &str = "proposal";
pub(crate) const NOTIFICATION: &str = "notification";
pub(crate) const MODERATION: &str = "moderation";
pub(crate) const EMAIL: &str = "email";
pub(crate) const EMAIL_CODE: &str = "email-code";
pub(crate) const VOTE: &str = "comment-vote";
pub(crate) const SUPPORT: &str = "support";
pub(crate) const STANCE: &str = "stance";
pub(crate) const SURVEY: &str = "survey";
pub(crate) const FLAG: &str = "flag";
pub(crate) const FOLLOW: &str = "follow";

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/consultations", get(list).post(create))
        .route(
            "/consultations/{id}",
            get(retrieve).put(replace).delete(remove),
        )
        .route(
            "/consultations/{id}/follow",
            put(contributions::follow).delete(contributions::unfollow),
        )
        .route(
            "/consultations/{id}/comments",
            get(contributions::comments).post(contributions::create_comment),
        )
        .route(
            "/consultations/{id}/comments/{cid}",
            get(contributions::comment)
                .patch(contributions::edit_comment)
                .delete(contributions::delete_comment),
        )
        .route(
            "/consultations/{id}/comments/{cid}/vote",
            put(contributions::vote).delete(contributions::unvote),
        )
        .route(
            "/consultations/{id}/proposals",
            get(contributions::proposals).post(contributions::create_proposal),
        )
        .route(
            "/consultations/{id}/proposals/{pid}",
            get(contributions::proposal)
                .patch(contributions::edit_proposal)
                .delete(contributions::withdraw_proposal),
        )
        .route(
            "/consultations/{id}/proposals/{pid}/support",
            put(contributions::support).delete(contributions::unsupport),
        )
        .route(
            "/consultations/{id}/proposals/{pid}/answer",
            post(contributions::answer),
        )
        .route(
            "/consultations/{id}/proposals/{pid}/milestones",
            post(contributions::milestone),
        )
        .route(
            "/consultations/{id}/surveys/{sid}/response",
            get(contributions::survey_response).put(contributions::answer_survey),
        )
        .route("/consultations/{id}/flags", post(moderation::flag))
        .route("/consultations/{id}/results", get(results::results))
        .route("/consultations/{id}/results.csv", get(results::csv))
        .route("/consultations/{id}/results.geojson", get(results::geojson))
        .route("/moderation/queue", get(moderation::queue))
        .route("/moderation/actions", post(moderation::act))
        .route("/moderation/log", get(moderation::log))
        .route("/notifications", get(people::notifications))
        .route("/notifications/read", post(people::mark_read))
        .route("/me/participation", get(people::export))
        .route("/me", axum::routing::delete(people::erase))
        .route("/me/email", get(people::email_status).post(people::email))
        .route("/me/email/verify", post(people::verify_email))
}

// ---------------------------------------------------------------------------------------------------------------
// state, errors, helpers

/// What consultations keep in memory on a node: the per-account limits and what readers share.
#[derive(Default)]
pub struct ParticipationState {
    pub limits: Limits,
    pub(crate) shared: shared::SharedReads,
}

/// A refusal: an NGSI-LD error, or too many requests (`429` with `Retry-After`).
#[derive(Debug)]
pub enum Refused {
    Api(ApiError),
    TooMany { detail: String, retry_after: u64 },
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused::Api(e)
    }
}

impl From<NgsiError> for Refused {
    fn from(e: NgsiError) -> Self {
        Refused::Api(ApiError(e))
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Api(e) => e.into_response(),
            Refused::TooMany {
                detail,
                retry_after,
            } => {
                let mut r = crate::hardening::problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    "Too many requests",
                    &detail,
                );
                if let Ok(v) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
        }
    }
}

pub type Answer = Result<Response, Refused>;

/// The caller, as the authentication middleware found them (anonymous when it found nobody).
pub struct Who(pub Principal);

impl FromRequestParts<SharedState> for Who {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &SharedState) -> Result<Who, ApiError> {
        Ok(Who(parts
            .extensions
            .get::<Principal>()
            .cloned()
            .unwrap_or_else(Principal::anonymous)))
    }
}

pub(crate) fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn json(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

pub(crate) fn created(v: &Value, location: &str) -> Response {
    let mut r = json(StatusCode::CREATED, v);
    if let Ok(h) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, h);
    }
    r
}

pub(crate) fn conflict(d: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Conflict, d)
}

pub(crate) fn bad(d: impl Into<String>) -> ApiError {
    ApiError::bad_data(d)
}

pub(crate) fn denied(p: &Principal, d: impl Into<String>) -> ApiError {
    crate::guard::denied(p, d.into())
}

pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub(crate) fn consultation_url(id: &str) -> String {
    format!("/api/consultations/{}", path_segment(id))
}

/// Parses a JSON body into `T` with a precise error.
pub(crate) fn body_as<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let v = crate::parse_body(body)?;
    serde_json::from_value(v).map_err(|e| bad(format!("the request body: {e}")))
}

/// Applies store operations; a refused one becomes the matching error.
pub(crate) async fn write(
    state: &SharedState,
    ops: Vec<PartOp>,
) -> Result<Vec<PartOutcome>, ApiError> {
    match state.store.participation_write(ops).await? {
        Ok(o) => Ok(o),
        Err(PartError::AlreadyExists { kind, id }) => Err(ApiError::new(
            ErrorKind::AlreadyExists,
            format!("{kind} {id} already exists"),
        )),
        Err(PartError::NotFound { kind, id }) => Err(ApiError::not_found(format!(
            "{kind} {id} does not exist (it was removed meanwhile)"
        ))),
        Err(PartError::TooMany { kind, limit }) => Err(conflict(match kind.as_str() {
            SUPPORT => format!(
                "you already support {limit} proposals here, the most one person may; withdraw a support first"
            ),
            k => format!("at most {limit} {k} per person here"),
        })),
    }
}

/// Writes `ops`, which `p` did in consultation `id`: `p`'s next reads there see them at once (others' within
/// [`shared::TTL`]).
pub(crate) async fn write_for(
    state: &SharedState,
    p: &Principal,
    id: &str,
    ops: Vec<PartOp>,
) -> Result<Vec<PartOutcome>, ApiError> {
    let out = write(state, ops).await?;
    if let Some(me) = &p.subject {
        state.participation.shared.wrote(id, me);
    }
    Ok(out)
}

/// A consultation with its record, as stored.
pub(crate) struct Loaded {
    pub c: Consultation,
    pub rec: ParticipationRecord,
}

pub(crate) fn parse_consultation(rec: &ParticipationRecord) -> Result<Consultation, ApiError> {
    serde_json::from_value(rec.doc.clone()).map_err(|e| {
        ApiError::new(
            ErrorKind::InternalError,
            format!(
                "consultation {} is stored in a shape this version cannot read: {e}",
                rec.id
            ),
        )
    })
}

/// The consultation `id` as `p` may see it: a draft is seen by its owner and administrators only (others get 404,
/// as if it did not exist).
pub(crate) async fn load(state: &SharedState, p: &Principal, id: &str) -> Result<Loaded, ApiError> {
    let missing = || ApiError::not_found(format!("consultation {id} does not exist"));
    let rec = state
        .store
        .participation_get(CONSULTATION, id)
        .await?
        .ok_or_else(missing)?;
    let c = parse_consultation(&rec)?;
    if !c.published && !part::may_see_draft(p, c.owner.as_deref()) {
        return Err(missing());
    }
    Ok(Loaded { c, rec })
}

/// Refuses `action` outside the phase that opens it.
pub(crate) fn check_open(c: &Consultation, action: Action) -> Result<(), ApiError> {
    c.allows(action, Utc::now()).map_err(conflict)
}

pub(crate) fn check_participant(p: &Principal, what: &str) -> Result<(), ApiError> {
    if part::may_participate(p) {
        Ok(())
    } else {
        Err(denied(
            p,
            format!("{what} needs a signed-in account (not a device) with the right to write"),
        ))
    }
}

pub(crate) fn subject(p: &Principal) -> String {
    p.subject.clone().unwrap_or_default()
}

/// The account's display name (its pseudonym), else its id.
pub(crate) async fn display_name(state: &SharedState, p: &Principal) -> Option<String> {
    let id = p.subject.as_deref()?;
    match state.store.get_account(id).await {
        Ok(Some(a)) => a
            .display_name
            .filter(|n| !n.trim().is_empty())
            .or(Some(a.id)),
        _ => Some(id.to_string()),
    }
}

/// For votes, supports and surveys: the account is old enough and has a verified address when the consultation
/// asks. Accounts of the identity provider (no local account) are vouched for by it.
pub(crate) async fn check_eligible(
    state: &SharedState,
    p: &Principal,
    c: &Consultation,
) -> Result<(), ApiError> {
    if c.min_account_age_hours == 0 && !c.require_verified_email {
        return Ok(());
    }
    let id = subject(p);
    let Some(account) = state.store.get_account(&id).await? else {
        return Ok(());
    };
    let age = Utc::now() - account.created_at;
    if age < chrono::Duration::hours(c.min_account_age_hours as i64) {
        return Err(ApiError::new(
            ErrorKind::AccessDenied,
            format!(
                "this consultation counts votes of accounts at least {} hours old; yours is {} hours old",
                c.min_account_age_hours,
                age.num_hours()
            ),
        ));
    }
    if c.require_verified_email {
        let q = PartQuery {
            kind: EMAIL.into(),
            author: Some(id),
            limit: 1,
            ..Default::default()
        };
        if state
            .store
            .participation_list(&q, false)
            .await?
            .0
            .is_empty()
        {
            return Err(ApiError::new(
                ErrorKind::AccessDenied,
                "this consultation counts votes of accounts with a verified e-mail address: add one under your \
                 account (POST /api/me/email)",
            ));
        }
    }
    Ok(())
}

/// A notification record for `to`.
pub(crate) fn notification(
    to: &str,
    consultation: &str,
    kind: &str,
    target: &str,
    text: part::LangText,
) -> PartOp {
    let at = now();
    PartOp::Put {
        record: ParticipationRecord {
            kind: NOTIFICATION.into(),
            id: new_id("nt"),
            consultation: Some(consultation.into()),
            parent: None,
            author: Some(to.into()),
            created_at: at,
            modified_at: at,
            doc: json!({"kind": kind, "target": target, "text": text, "read": false}),
        },
        mode: PutMode::Create,
    }
}

/// The accounts following a consultation.
pub(crate) async fn followers(
    state: &SharedState,
    consultation: &str,
) -> Result<Vec<String>, ApiError> {
    Ok(state
        .store
        .participation_marks(&MarkQuery {
            kind: Some(FOLLOW.into()),
            targets: Some(vec![consultation.to_string()]),
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(|m| m.author)
        .collect())
}

// ---------------------------------------------------------------------------------------------------------------
// consultations

/// Checks a consultation a planner wrote against the store: its scenarios exist.
async fn check_scenarios(state: &SharedState, c: &Consultation) -> Result<(), ApiError> {
    for s in &c.scenarios {
        if state.store.get_scenario(s).await?.is_none() {
            return Err(bad(format!("scenario {s} does not exist")));
        }
    }
    Ok(())
}

fn parse_written(body: &Bytes) -> Result<Consultation, ApiError> {
    let mut v = crate::parse_body(body)?;
    // what the server computes and sets is accepted back (a GET's answer can be PUT) and ignored
    if let Some(o) = v.as_object_mut() {
        for k in [
            "currentPhase",
            "allowed",
            "eligible",
            "counts",
            "following",
            "scenarioSummaries",
            "createdAt",
            "modifiedAt",
            "owner",
            "organisation",
        ] {
            o.remove(k);
        }
    }
    serde_json::from_value(v).map_err(|e| bad(format!("the consultation: {e}")))
}

async fn list(State(state): State<SharedState>, Who(p): Who, RawQuery(raw): RawQuery) -> Answer {
    Params::parse(raw.as_deref(), &[])?;
    let q = PartQuery {
        kind: CONSULTATION.into(),
        newest_first: true,
        ..Default::default()
    };
    let (recs, _) = state.store.participation_list(&q, false).await?;
    let mut out = Vec::new();
    for rec in recs {
        let c = parse_consultation(&rec)?;
        if !c.published && !part::may_see_draft(&p, c.owner.as_deref()) {
            continue;
        }
        out.push(personal_view(&state, &p, Loaded { c, rec }).await?);
    }
    Ok(json(StatusCode::OK, &Value::Array(out)))
}

async fn create(State(state): State<SharedState>, Who(p): Who, body: Bytes) -> Answer {
    if !part::may_create_consultation(&p) {
        return Err(denied(
            &p,
            "creating a consultation needs a planner's or an administrator's account",
        )
        .into());
    }
    let mut c = parse_written(&body)?;
    let given_id = !c.id.is_empty();
    if !given_id {
        c.id = part::slug(part::pick(&c.title, "en").unwrap_or(""));
    }
    c.owner = p.subject.clone();
    c.organisation = p.organisation.clone();
    c.validate().map_err(bad)?;
    check_scenarios(&state, &c).await?;
    let at = now();
    let base = c.id.clone();
    // a made-up id takes the first free suffix
    for n in 1.. {
        if n > 1 {
            if given_id || n > 50 {
                break;
            }
            c.id = format!("{base}-{n}");
        }
        let rec = ParticipationRecord {
            kind: CONSULTATION.into(),
            id: c.id.clone(),
            consultation: None,
            parent: None,
            author: p.subject.clone(),
            created_at: at,
            modified_at: at,
            doc: json!(c),
        };
        match write(
            &state,
            vec![PartOp::Put {
                record: rec.clone(),
                mode: PutMode::Create,
            }],
        )
        .await
        {
            Ok(_) => {
                state
                    .store
                    .append_audit(
                        &p.label(),
                        "consultation.create",
                        &c.id,
                        json!({"published": c.published}),
                    )
                    .await?;
                let v = personal_view(&state, &p, Loaded { c, rec }).await?;
                let url = consultation_url(v["id"].as_str().unwrap_or_default());
                return Ok(created(&v, &url));
            }
            Err(e) if e.0.kind == ErrorKind::AlreadyExists && !given_id => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(conflict(format!("consultation {base} already exists")).into())
}

async fn retrieve(
    State(state): State<SharedState>,
    Who(p): Who,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Answer {
    Params::parse(raw.as_deref(), &[])?;
    let l = load(&state, &p, &id).await?;
    Ok(json(StatusCode::OK, &personal_view(&state, &p, l).await?))
}

async fn replace(
    State(state): State<SharedState>,
    Who(p): Who,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let old = load(&state, &p, &id).await?;
    if !part::may_manage_consultation(&p, old.c.owner.as_deref()) {
        return Err(denied(
            &p,
            "only the consultation's planner or an administrator may change it",
        )
        .into());
    }
    let mut c = parse_written(&body)?;
    if !c.id.is_empty() && c.id != id {
        return Err(bad(format!(
            "the body's id {} differs from the id in the URL {id}",
            c.id
        ))
        .into());
    }
    c.id = id.clone();
    c.owner = old.c.owner.clone();
    c.organisation = old.c.organisation.clone();
    c.validate().map_err(bad)?;
    check_scenarios(&state, &c).await?;
    let rec = ParticipationRecord {
        modified_at: now(),
        doc: json!(c),
        ..old.rec
    };
    write(
        &state,
        vec![PartOp::Put {
            record: rec.clone(),
            mode: PutMode::Replace,
        }],
    )
    .await?;
    state.participation.shared.forget(&id);
    state
        .store
        .append_audit(
            &p.label(),
            "consultation.replace",
            &id,
            json!({"published": c.published}),
        )
        .await?;
    Ok(json(
        StatusCode::OK,
        &personal_view(&state, &p, Loaded { c, rec }).await?,
    ))
}

async fn remove(State(state): State<SharedState>, Who(p): Who, Path(id): Path<String>) -> Answer {
    let old = load(&state, &p, &id).await?;
    if !part::may_manage_consultation(&p, old.c.owner.as_deref()) {
        return Err(denied(
            &p,
            "only the consultation's planner or an administrator may delete it",
        )
        .into());
    }
    let out = write(
        &state,
        vec![
            PartOp::DeleteConsultation {
                consultation: id.clone(),
            },
            PartOp::UnmarkScope { scope: id.clone() },
            PartOp::Delete {
                kind: CONSULTATION.into(),
                id: id.clone(),
            },
        ],
    )
    .await?;
    state.participation.shared.forget(&id);
    state
        .store
        .append_audit(
            &p.label(),
            "consultation.delete",
            &id,
            json!({"records": out[0].count, "marks": out[1].count}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The consultation as `p` sees it now: the shared view (kept [`shared::TTL`]) with the current phase, what is open
/// and whether `p` follows it.
pub(crate) async fn personal_view(
    state: &SharedState,
    p: &Principal,
    l: Loaded,
) -> Result<Value, ApiError> {
    let shared = shared_view(state, p, &l).await?;
    let mut v = (*shared).clone();
    let at = Utc::now();
    v["currentPhase"] = json!(l.c.stage(at).as_str());
    // what the phase opens (`allowed`), and whether the caller's account counts for votes, supports and survey
    // answers here (`eligible`)
    let eligible = match &p.subject {
        None => Value::Null,
        Some(_) => match check_eligible(state, p, &l.c).await {
            Ok(()) => json!({"ok": true}),
            Err(e) if e.0.kind == ErrorKind::AccessDenied => {
                json!({"ok": false, "reason": e.0.detail})
            }
            Err(e) => return Err(e),
        },
    };
    let allowed: serde_json::Map<String, Value> = Action::ALL
        .iter()
        .map(|a| (a.as_str().to_string(), json!(l.c.allows(*a, at).is_ok())))
        .collect();
    v["allowed"] = Value::Object(allowed);
    v["eligible"] = eligible;
    v["following"] = json!(match &p.subject {
        Some(me) => !state
            .store
            .participation_marks(&MarkQuery {
                kind: Some(FOLLOW.into()),
                targets: Some(vec![l.c.id.clone()]),
                author: Some(me.clone()),
                limit: 1,
                ..Default::default()
            })
            .await?
            .is_empty(),
        None => false,
    });
    Ok(v)
}

/// What every reader of a consultation sees alike: the consultation, its counts and its scenarios' indicators.
async fn shared_view(
    state: &SharedState,
    p: &Principal,
    l: &Loaded,
) -> Result<Arc<Value>, ApiError> {
    shared_for(state, p, l, "view", || compute_view(state, l)).await
}

/// `what` of consultation `l` (a page, its results) as every reader sees it, shared for a second (see [`shared`]):
/// for the consultation as it is now (a change to it makes new values), and computed afresh for `p` if `p` just
/// wrote there.
pub(crate) async fn shared_for<T, F, Fut>(
    state: &SharedState,
    p: &Principal,
    l: &Loaded,
    what: &str,
    compute: F,
) -> Result<Arc<T>, ApiError>
where
    T: Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let key = format!("{what} @{}", l.rec.modified_at.timestamp_micros());
    state
        .participation
        .shared
        .get(&l.c.id, &key, p.subject.as_deref(), compute)
        .await
}

/// A page of `items` with the number of all that match in `X-Total-Count`.
pub(crate) fn counted(items: Vec<Value>, total: impl ToString) -> Response {
    let mut resp = json(StatusCode::OK, &Value::Array(items));
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        resp.headers_mut().insert("x-total-count", v);
    }
    resp
}

async fn compute_view(state: &SharedState, l: &Loaded) -> Result<Value, ApiError> {
    let c = &l.c;
    let mut v = json!(c);
    v["createdAt"] = json!(time(l.rec.created_at));
    v["modifiedAt"] = json!(time(l.rec.modified_at));
    v["counts"] = results::counts(state, &c.id).await?;
    let mut summaries = Vec::new();
    for s in &c.scenarios {
        summaries.push(scenario_summary(state, s).await?);
    }
    v["scenarioSummaries"] = Value::Array(summaries);
    Ok(v)
}

/// A scenario's name and its latest finished run's effect in plain language.
async fn scenario_summary(state: &SharedState, id: &str) -> Result<Value, ApiError> {
    let Some(s) = state.store.get_scenario(id).await? else {
        return Ok(json!({"id": id, "name": null, "run": null, "indicators": [], "missing": true}));
    };
    let runs = state.store.list_runs(id).await?;
    let latest = runs
        .iter()
        .filter(|r| r.status == twin_store::RunStatus::Done)
        .max_by_key(|r| r.finished_at);
    let indicators: Vec<Value> = latest
        .map(|r| part::indicators(&r.summary))
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value, unit, text)| json!({"key": key, "value": value, "unit": unit, "text": text}))
        .collect();
    Ok(json!({
        "id": id,
        "name": s.document.get("name").cloned().unwrap_or(Value::Null),
        "description": s.document.get("description").cloned().unwrap_or(Value::Null),
        "run": latest.map(|r| r.id.clone()),
        "indicators": indicators,
    }))
}
