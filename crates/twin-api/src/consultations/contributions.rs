//! What participants contribute to a consultation: comments in threads with a stance, votes on comments,
//! proposals (pinned or drawn as a scenario), supports, survey answers, follows; and the planners' answers.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use twin_model::participation::{
    self as part, Action, CommentDoc, ContentState, LangText, Milestone, ProposalDoc,
    ProposalStatus, Stance,
};
use twin_model::policy::Principal;
use twin_store::{MarkQuery, PartOp, PartQuery, ParticipationMark, ParticipationRecord, PutMode};

use super::limits::Limited;
use super::*;

/// The most comments a page holds.
const MAX_PAGE: usize = 100;
/// The same text by the same account within this long is a duplicate.
const DUPLICATE_WINDOW_MINUTES: i64 = 10;
/// `sort=top` ranks at most this many threads (the newest).
const TOP_WINDOW: usize = 5000;

/// The `parent` of a thread's root: `@` and the scenario it is on (`@` alone: on the consultation as a whole).
fn topic(scenario: Option<&str>) -> String {
    format!("@{}", scenario.unwrap_or(""))
}

fn topics(c: &Consultation) -> Vec<String> {
    std::iter::once(topic(None))
        .chain(c.scenarios.iter().map(|s| topic(Some(s))))
        .collect()
}

/// A record's document as the model's `T` (a stored document this version cannot read is an internal error).
fn parse_doc<T: serde::de::DeserializeOwned>(rec: &ParticipationRecord) -> Result<T, ApiError> {
    serde_json::from_value(rec.doc.clone()).map_err(|e| {
        ApiError::new(
            ErrorKind::InternalError,
            format!("{} {}: {e}", rec.kind, rec.id),
        )
    })
}

pub(crate) fn parse_comment(rec: &ParticipationRecord) -> Result<CommentDoc, ApiError> {
    parse_doc(rec)
}

pub(crate) fn parse_proposal(rec: &ParticipationRecord) -> Result<ProposalDoc, ApiError> {
    parse_doc(rec)
}

/// Whether `p` reads a hidden contribution's text: its author, moderators, administrators.
fn sees_hidden(p: &Principal, author: Option<&str>) -> bool {
    part::may_moderate(p) || (author.is_some() && p.subject.as_deref() == author)
}

fn hiding_json(h: &Option<part::Hiding>, p: &Principal) -> Value {
    match h {
        None => Value::Null,
        Some(h) if p.is_admin() => json!({"reason": h.reason, "at": super::time(h.at), "by": h.by}),
        Some(h) => json!({"reason": h.reason, "at": super::time(h.at)}),
    }
}

/// Votes per comment: (up, down).
type Tallies = HashMap<String, (u64, u64)>;

/// Up and down votes per comment, of the comments `ids` or (`ids` None) of a whole consultation.
pub(crate) async fn vote_tallies(
    state: &SharedState,
    ids: Option<&[String]>,
    consultation: Option<&str>,
) -> Result<Tallies, ApiError> {
    let mut out: Tallies = HashMap::new();
    if ids.is_some_and(|i| i.is_empty()) {
        return Ok(out);
    }
    for t in state
        .store
        .participation_tally(VOTE, ids, consultation, true)
        .await?
    {
        let e = out.entry(t.target).or_default();
        match t.value.as_i64() {
            Some(v) if v > 0 => e.0 += t.count,
            Some(v) if v < 0 => e.1 += t.count,
            _ => {}
        }
    }
    Ok(out)
}

async fn my_marks(
    state: &SharedState,
    p: &Principal,
    kind: &str,
    ids: &[String],
) -> Result<HashMap<String, Value>, ApiError> {
    let Some(me) = &p.subject else {
        return Ok(HashMap::new());
    };
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(state
        .store
        .participation_marks(&MarkQuery {
            kind: Some(kind.into()),
            targets: Some(ids.to_vec()),
            author: Some(me.clone()),
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(|m| (m.target, m.value))
        .collect())
}

pub(crate) fn comment_view(
    rec: &ParticipationRecord,
    d: &CommentDoc,
    p: &Principal,
    votes: (u64, u64),
    my_vote: i64,
    replies: usize,
) -> Value {
    let body = match d.state {
        ContentState::Visible => d.body.as_str(),
        ContentState::Hidden if sees_hidden(p, rec.author.as_deref()) => d.body.as_str(),
        _ => "",
    };
    json!({
        "id": rec.id,
        "consultation": rec.consultation,
        "scenario": d.scenario,
        "parent": d.reply_to,
        "depth": d.depth,
        "author": rec.author,
        "authorName": if rec.author.is_some() { json!(d.author_name) } else { Value::Null },
        "stance": d.stance,
        "body": body,
        "location": d.location,
        "lang": d.lang,
        "createdAt": super::time(rec.created_at),
        "editedAt": d.edited_at.map(super::time),
        "state": d.state,
        "hidden": hiding_json(&d.hidden, p),
        "votes": {"up": votes.0, "down": votes.1},
        "myVote": my_vote,
        "replies": replies,
    })
}

/// Puts each thread's replies after their parent, depth first, oldest first.
fn flatten(
    root: &ParticipationRecord,
    replies: &[(ParticipationRecord, CommentDoc)],
) -> Vec<usize> {
    fn walk(
        parent: &str,
        replies: &[(ParticipationRecord, CommentDoc)],
        out: &mut Vec<usize>,
        depth: u32,
    ) {
        if depth > part::MAX_DEPTH + 1 {
            return;
        }
        for (i, (r, d)) in replies.iter().enumerate() {
            if d.reply_to.as_deref() == Some(parent) && r.parent.is_some() {
                out.push(i);
                walk(&r.id, replies, out, depth + 1);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.id, replies, &mut out, 2);
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewComment {
    body: String,
    stance: Stance,
    #[serde(default)]
    scenario: Option<String>,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    location: Option<[f64; 2]>,
    #[serde(default)]
    lang: Option<String>,
}

/// A page of comment threads as every reader sees it: each comment with its document, votes (up, down) and number
/// of replies, and how many threads there are in all.
struct CommentsPage {
    items: Vec<(ParticipationRecord, CommentDoc, (u64, u64), usize)>,
    total: u64,
}

pub(crate) async fn comments(
    State(state): State<SharedState>,
    Who(p): Who,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let params = Params::parse(
        raw.as_deref(),
        &["scenario", "parent", "sort", "limit", "offset"],
    )?;
    let l = load(&state, &p, &id).await?;
    let limit = params.usize("limit")?.unwrap_or(20).min(MAX_PAGE);
    let offset = params.usize("offset")?.unwrap_or(0);
    let sort = params.get("sort").unwrap_or("new");
    if !matches!(sort, "new" | "old" | "top") {
        return Err(bad("sort: new, old or top").into());
    }
    let scenario = params.get("scenario");
    let parent = params.get("parent");
    let what = format!("comments {scenario:?} {parent:?} {sort} {limit} {offset}");
    let page = shared_for(&state, &p, &l, &what, || {
        comments_page(&state, &l, scenario, parent, sort, limit, offset)
    })
    .await?;
    let ids: Vec<String> = page.items.iter().map(|(r, ..)| r.id.clone()).collect();
    let mine = my_marks(&state, &p, VOTE, &ids).await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|(r, d, votes, replies)| {
            comment_view(
                r,
                d,
                &p,
                *votes,
                mine.get(&r.id).and_then(Value::as_i64).unwrap_or(0),
                *replies,
            )
        })
        .collect();
    Ok(counted(items, page.total))
}

/// The page of threads of consultation `l` that [`comments`] asks for, each thread's replies after its root.
async fn comments_page(
    state: &SharedState,
    l: &Loaded,
    scenario: Option<&str>,
    parent: Option<&str>,
    sort: &str,
    limit: usize,
    offset: usize,
) -> Result<CommentsPage, ApiError> {
    let id = &l.c.id;
    // the roots of the page
    let (roots, total): (Vec<ParticipationRecord>, u64) = if let Some(parent) = parent {
        let rec = comment_record(state, id, parent).await?;
        (vec![rec], 1)
    } else {
        let parents = match scenario {
            Some(s) if l.c.scenarios.iter().any(|x| x == s) => vec![topic(Some(s))],
            Some("") => vec![topic(None)],
            Some(s) => {
                return Err(bad(format!(
                    "scenario {s} is not one of this consultation's"
                )))
            }
            None => topics(&l.c),
        };
        let mut q = PartQuery {
            kind: COMMENT.into(),
            consultation: Some(id.clone()),
            parents: Some(parents),
            newest_first: sort != "old",
            limit,
            offset,
            ..Default::default()
        };
        if sort == "top" {
            q.limit = TOP_WINDOW;
            q.offset = 0;
            let (all, total) = state.store.participation_list(&q, true).await?;
            let ids: Vec<String> = all.iter().map(|r| r.id.clone()).collect();
            let t = vote_tallies(state, Some(&ids), None).await?;
            let score =
                |r: &ParticipationRecord| t.get(&r.id).map_or(0, |(u, d)| *u as i64 - *d as i64);
            let mut all = all;
            // stable: equal scores keep newest first
            all.sort_by_key(|r| std::cmp::Reverse(score(r)));
            let page = all.into_iter().skip(offset).take(limit).collect();
            (page, total.unwrap_or(0))
        } else {
            let (page, total) = state.store.participation_list(&q, true).await?;
            (page, total.unwrap_or(0))
        }
    };
    // their threads, in one query
    let root_ids: Vec<String> = roots
        .iter()
        .map(|r| match r.parent.as_deref() {
            Some(pa) if !pa.starts_with('@') => pa.to_string(),
            _ => r.id.clone(),
        })
        .collect();
    let thread = if root_ids.is_empty() {
        Vec::new()
    } else {
        state
            .store
            .participation_list(
                &PartQuery {
                    kind: COMMENT.into(),
                    consultation: Some(id.clone()),
                    parents: Some(root_ids),
                    ..Default::default()
                },
                false,
            )
            .await?
            .0
    };
    let mut replies = Vec::with_capacity(thread.len());
    for r in thread {
        let d = parse_comment(&r)?;
        replies.push((r, d));
    }
    let mut reply_counts: HashMap<String, usize> = HashMap::new();
    for (_, d) in &replies {
        if let Some(to) = &d.reply_to {
            *reply_counts.entry(to.clone()).or_default() += 1;
        }
    }
    let mut ordered: Vec<(ParticipationRecord, CommentDoc)> = Vec::new();
    for root in &roots {
        let d = parse_comment(root)?;
        ordered.push((root.clone(), d));
        for i in flatten(root, &replies) {
            ordered.push(replies[i].clone());
        }
    }
    let ids: Vec<String> = ordered.iter().map(|(r, _)| r.id.clone()).collect();
    let tallies = vote_tallies(state, Some(&ids), None).await?;
    let items = ordered
        .into_iter()
        .map(|(r, d)| {
            let votes = tallies.get(&r.id).copied().unwrap_or((0, 0));
            let n = reply_counts.get(&r.id).copied().unwrap_or(0);
            (r, d, votes, n)
        })
        .collect();
    Ok(CommentsPage { items, total })
}

/// The record `rid` of `kind` (a comment, a proposal) in consultation `id`.
pub(crate) async fn record_in(
    state: &SharedState,
    kind: &str,
    id: &str,
    rid: &str,
) -> Result<ParticipationRecord, ApiError> {
    match state.store.participation_get(kind, rid).await? {
        Some(r) if r.consultation.as_deref() == Some(id) => Ok(r),
        _ => Err(ApiError::not_found(format!(
            "consultation {id} has no {kind} {rid}"
        ))),
    }
}

async fn comment_record(
    state: &SharedState,
    id: &str,
    cid: &str,
) -> Result<ParticipationRecord, ApiError> {
    record_in(state, COMMENT, id, cid).await
}

async fn one_comment_view(
    state: &SharedState,
    p: &Principal,
    rec: &ParticipationRecord,
) -> Result<Value, ApiError> {
    let d = parse_comment(rec)?;
    let ids = [rec.id.clone()];
    let t = vote_tallies(state, Some(&ids), None).await?;
    let mine = my_marks(state, p, VOTE, &ids).await?;
    Ok(comment_view(
        rec,
        &d,
        p,
        t.get(&rec.id).copied().unwrap_or((0, 0)),
        mine.get(&rec.id).and_then(Value::as_i64).unwrap_or(0),
        0,
    ))
}

pub(crate) async fn comment(
    State(state): State<SharedState>,
    Who(p): Who,
    Path((id, cid)): Path<(String, String)>,
) -> Answer {
    load(&state, &p, &id).await?;
    let rec = comment_record(&state, &id, &cid).await?;
    Ok(json(
        StatusCode::OK,
        &one_comment_view(&state, &p, &rec).await?,
    ))
}

/// Refuses a text the same author posted in the last minutes.
async fn check_duplicate(
    state: &SharedState,
    kind: &str,
    me: &str,
    text: &str,
    body_of: impl Fn(&ParticipationRecord) -> Option<String>,
) -> Result<(), ApiError> {
    let q = PartQuery {
        kind: kind.into(),
        author: Some(me.into()),
        created_after: Some(Utc::now() - chrono::Duration::minutes(DUPLICATE_WINDOW_MINUTES)),
        newest_first: true,
        limit: 50,
        ..Default::default()
    };
    let (recent, _) = state.store.participation_list(&q, false).await?;
    if recent.iter().any(|r| body_of(r).as_deref() == Some(text)) {
        return Err(conflict(format!(
            "you posted the same text in the last {DUPLICATE_WINDOW_MINUTES} minutes"
        )));
    }
    Ok(())
}

fn check_lang(lang: &Option<String>) -> Result<(), ApiError> {
    match lang {
        Some(l) if !part::valid_lang(l) => Err(bad(format!("lang: {l:?} is not a language tag"))),
        _ => Ok(()),
    }
}

pub(crate) async fn create_comment(
    State(state): State<SharedState>,
    Who(p): Who,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    check_participant(&p, "commenting")?;
    let me = subject(&p);
    let l = load(&state, &p, &id).await?;
    check_open(&l.c, Action::Comment)?;
    let n: NewComment = body_as(&body)?;
    let text = part::check_text(&n.body, "body", part::MAX_BODY).map_err(bad)?;
    check_lang(&n.lang)?;
    let location = n.location.map(part::check_point).transpose().map_err(bad)?;
    if let Some(s) = &n.scenario {
        if !l.c.scenarios.contains(s) {
            return Err(bad(format!("scenario {s} is not one of this consultation's")).into());
        }
    }
    let (parent_col, depth, reply_to, parent_author, scenario) = match &n.parent {
        None => (
            topic(n.scenario.as_deref()),
            1,
            None,
            None,
            n.scenario.clone(),
        ),
        Some(pid) => {
            let parent = comment_record(&state, &id, pid).await?;
            let pd = parse_comment(&parent)?;
            if pd.state != ContentState::Visible {
                return Err(conflict(format!(
                    "comment {pid} is {}: it takes no replies",
                    match pd.state {
                        ContentState::Hidden => "hidden",
                        _ => "deleted",
                    }
                ))
                .into());
            }
            if pd.depth >= part::MAX_DEPTH {
                return Err(bad(format!(
                    "replies nest at most {} deep: comment {pid} is a reply at depth {}",
                    part::MAX_DEPTH,
                    pd.depth
                ))
                .into());
            }
            let root = match parent.parent.as_deref() {
                Some(r) if !r.starts_with('@') => r.to_string(),
                _ => parent.id.clone(),
            };
            // a reply is on what its thread is on
            (
                root,
                pd.depth + 1,
                Some(pid.clone()),
                parent.author.clone(),
                pd.scenario.clone(),
            )
        }
    };
    state.participation.limits.take(&me, Limited::Comment)?;
    check_duplicate(&state, COMMENT, &me, &text, |r| {
        r.doc.get("body").and_then(Value::as_str).map(String::from)
    })
    .await?;
    let at = now();
    let doc = CommentDoc {
        body: text,
        stance: n.stance,
        scenario: scenario.clone(),
        depth,
        reply_to,
        location,
        lang: n.lang,
        author_name: display_name(&state, &p).await,
        edited_at: None,
        state: ContentState::Visible,
        hidden: None,
    };
    let rec = ParticipationRecord {
        kind: COMMENT.into(),
        id: new_id("cm"),
        consultation: Some(id.clone()),
        parent: Some(parent_col),
        author: Some(me.clone()),
        created_at: at,
        modified_at: at,
        doc: json!(doc),
    };
    let mut ops = vec![
        PartOp::Put {
            record: rec.clone(),
            mode: PutMode::Create,
        },
        stance_mark(&id, scenario.as_deref(), &me, n.stance),
    ];
    if let Some(to) = parent_author.filter(|a| *a != me) {
        ops.push(notification(
            &to,
            &id,
            "reply",
            &rec.id,
            LangText::from([
                (
                    "en".into(),
                    format!(
                        "{} replied to your comment",
                        doc.author_name.clone().unwrap_or_default()
                    ),
                ),
                (
                    "fi".into(),
                    format!(
                        "{} vastasi kommenttiisi",
                        doc.author_name.clone().unwrap_or_default()
                    ),
                ),
            ]),
        ));
    }
    write_for(&state, &p, &id, ops).await?;
    let v = comment_view(&rec, &doc, &p, (0, 0), 0, 0);
    Ok(created(
        &v,
        &format!("{}/comments/{}", consultation_url(&id), rec.id),
    ))
}

/// A participant's latest stance on a scenario (or on the consultation as a whole).
fn stance_mark(consultation: &str, scenario: Option<&str>, me: &str, s: Stance) -> PartOp {
    PartOp::Mark {
        mark: ParticipationMark {
            kind: STANCE.into(),
            target: format!("{consultation}/{}", scenario.unwrap_or("_general")),
            author: me.into(),
            scope: consultation.into(),
            value: json!(s),
            at: now(),
        },
        limit: None,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentEdit {
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    stance: Option<Stance>,
}

pub(crate) async fn edit_comment(
    State(state): State<SharedState>,
    Who(p): Who,
    Path((id, cid)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    check_participant(&p, "editing a comment")?;
    let l = load(&state, &p, &id).await?;
    let rec = comment_record(&state, &id, &cid).await?;
    if rec.author.is_none() || rec.author != p.subject {
        return Err(denied(&p, "only its author may edit a comment").into());
    }
    check_open(&l.c, Action::Comment)?;
    let e: CommentEdit = body_as(&body)?;
    let mut d = parse_comment(&rec)?;
    if d.state != ContentState::Visible {
        return Err(conflict("a hidden or deleted comment cannot be edited").into());
    }
    if let Some(b) = &e.body {
        d.body = part::check_text(b, "body", part::MAX_BODY).map_err(bad)?;
    }
    let mut ops = Vec::new();
    if let Some(s) = e.stance {
        d.stance = s;
        ops.push(stance_mark(&id, d.scenario.as_deref(), &subject(&p), s));
    }
    let at = now();
    d.edited_at = Some(at);
    let rec = ParticipationRecord {
        modified_at: at,
        doc: json!(d),
        ..rec
    };
    ops.insert(
        0,
        PartOp::Put {
            record: rec.clone(),
            mode: PutMode::Replace,
        },
    );
    write_for(&state, &p, &id, ops).await?;
    Ok(json(
        StatusCode::OK,
        &one_comment_view(&state, &p, &rec).await?,
    ))
}

pub(crate) async fn delete_comment(
    State(state): State<SharedState>,
    Who(p): Who,
    Path((id, cid)): Path<(String, String)>,
) -> Answer {
    check_participant(&p, "deleting a comment")?;
    load(&state, &p, &id).await?;
    let rec = comment_record(&state, &id, &cid).await?;
    let own = rec.author.is_some() && rec.author == p.subject;
    if !own && !part::may_moderate(&p) {
        return Err(denied(&p, "only its author (or a moderator) may delete a comment").into());
    }
    let mut d = parse_comment(&rec)?;
    d.state = ContentState::Deleted;
    d.body.clear();
    d.location = None;
    let rec = ParticipationRecord {
        modified_at: now(),
        doc: json!(d),
        ..rec
    };
    write_for(
        &state,
        &p,
        &id,
        vec![PartOp::Put {
            record: rec,
            mode: PutMode::Replace,
        }],
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteBody {
    value: i64,
}

pub(crate) async fn vote(
    State(state): State<SharedState>,
    Who(p): Who,
    Path((id, cid)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    check_participant(&p, "voting")?;
    let me = subject(&p);
    let l = load(&state, &p, &id).await?;
    check_open(&l.c, Action::Vote)?;
    let v: VoteBody = body_as(&body)?;
    if v.value != 1 && v.value != -1 {
        return Err(bad("value: 1 (up) or -1 (down)").into());
    }
    let rec = comment_record(&state, &id, &cid).await?;
    if rec.author.as_deref() == Some(me.as_str()) {
        return Err(conflict("you cannot vote on your own comment").into());
    }
    if parse_comment(&rec)?.state != ContentState::Visible {
        return Err(conflict(format!("comment {cid} is not shown: it takes no votes")).into());
    }
    check_eligible(&state, &p, &l.c).await?;
    state.participation.limits.take(&me, Limited::Vote)?;
    write_for(
        &state,
        &p,
        &id,
        vec![PartOp::Mark {
            mark: ParticipationMark {
                kind: VOTE.into(),
                target: cid.clone(),
                author: me,
                scope: id.clone(),
                value: json!(v.value),
                at: now(),
            },
            limit: None,
        }],
    )
    .await?;
    Ok(json(
        StatusCode::OK,
        &one_comment_view(&state, &p, &rec).await?,
    ))
}

pub(crate) async fn unvote(
    State(state): State<SharedState>,
    Who(p): Who,
    Path((id, cid)): Path<(String, String)>,
) -> Answer {
    take_back(&state, &p, &id, Action::Vote, VOTE, &cid, "voting").await?;
    let rec = comment_record(&state, &id, &cid).await?;
    Ok(json(
        StatusCode::OK,
        &one_comment_view(&state, &p, &rec).await?,
    ))
}

/// Takes back the caller's mark of `kind` on `target` (a vote, a support) while `action` is open.
async fn take_back(
    state: &SharedState,
    p: &Principal,
    id: &str,
    action: Action,
    kind: &str,
    target: &str,
    what: &str,
) -> Result<(), ApiError> {
    check_participant(p, what)?;
    let l = load(state, p, id).await?;
    check_open(&l.c, action)?;
    write_for(
        state,
        p,
        id,
        vec![PartOp::Unmark {
            kind: kind.into(),
            target: target.into(),
            author: subject(p),
        }],
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// proposals

pub(crate) fn proposal_view(
    rec: &ParticipationRecord,
    d: &ProposalDoc,
    p: &Principal,
    supports: u64,
    supported: bool,
) -> Value {
    let shown = d.state == ContentState::Visible || sees_hidden(p, rec.author.as_deref());
    json!({
        "id": rec.id,
        "consultation": rec.consultation,
        "author": rec.author,
        "authorName": if rec.author.is_some() { json!(d.author_name) } else { Value::Null },
        "title": if shown { d.title.as_str() } else { "" },
        "body": if shown { d.body.as_str() } else { "" },
        "location": d.location,
        "scenario": d.scenario,
        "geometry": d.geometry,
        "status": d.status,
        "answer": d.answer.as_ref().map(|a| json!({"text": a.text, "by": a.by, "at": super::time(a.at)})),
        "milestones": d.milestones.iter().map(|m| json!({"at": super::time(m.at), "title": m.title, "body": m.body})).collect::<Vec<_>>(),
        "state": d.state,
        "hidden": hiding_json(&d.hidden, p),
        "supports": supports,
        "supported": supported,
        "createdAt": super::time(rec.created_at),
        "editedAt": d.edited_at.map(super::time),
    })
}

async fn proposal_record(
    state: &SharedState,
    id: &str,
    pid: &str,
) -> Result<ParticipationRecord, ApiError> {
    record_in(state, PROPOSAL, id, pid).await
}

async fn one_proposal_view(
    state: &SharedState,
    p: &Principal,
    rec: &ParticipationRecord,
) -> Result<Value, ApiError> {
    let d = parse_proposal(rec)?;
    let ids = [rec.id.clone()];
    let supports = state
        .store
        .participation_tally(SUPPORT, Some(&ids), None, false)
        .await?
        .first()
        .map_or(0, |t| t.count);
    let mine = my_marks(state, p, SUPPORT, &ids).await?;
    Ok(proposal_view(
        rec,
        &d,
        p,
        supports,
        mine.contains_key(&rec.id),
    ))
}

pub(crate) async fn proposals(
    State(state): State<SharedState>,
    Who(p): Who,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let params = Params::parse(raw.as_deref(), &["sort", "status", "limit", "offset"])?;
    let l = load(&state, &p, &id).await?;
    let sort = params.get("sort").unwrap_or("new");
    if !matches!(sort, "new" | "supports") {
        return Err(bad("sort: new or supports").into());
    }
    let status: Option<ProposalStatus> = params
        .get("status")
        .map(|s| {
            serde_json::from_value(json!(s))
                .map_err(|_| bad(format!("status {s:?} is not a proposal status")))
        })
        .transpose()?;
    let limit = params.usize("limit")?.unwrap_or(50).min(500);
    let offset = params.usize("offset")?.unwrap_or(0);
    let what = format!("proposals {sort} {status:?} {limit} {offset}");
    let page = shared_for(&state, &p, &l, &what, || {
        proposals_page(&state, &id, sort, status, limit, offset)
    })
    .await?;
    let ids: Vec<String> = page.items.iter().map(|(r, ..)| r.id.clone()).collect();
    let mine = my_marks(&state, &p, SUPPORT, &ids).await?;
    let out: Vec<Value> = page
        .items
        .iter()
        .map(|(r, d, supports)| proposal_view(r, d, &p, *supports, mine.contains_key(&r.id)))
        .collect();
    Ok(counted(out, page.total))
}

/// A page of proposals as every reader sees it: each with its document and supports, and how many match in all.
struct ProposalsPage {
    items: Vec<(ParticipationRecord, ProposalDoc, u64)>,
    total: usize,
}

async fn proposals_page(
    state: &SharedState,
    id: &str,
    sort: &str,
    status: Option<ProposalStatus>,
    limit: usize,
    offset: usize,
) -> Result<ProposalsPage, ApiError> {
    let q = PartQuery {
        kind: PROPOSAL.into(),
        consultation: Some(id.to_string()),
        newest_first: true,
        ..Default::default()
    };
    let (recs, _) = state.store.participation_list(&q, false).await?;
    let supports: HashMap<String, u64> = state
        .store
        .participation_tally(SUPPORT, None, Some(id), false)
        .await?
        .into_iter()
        .map(|t| (t.target, t.count))
        .collect();
    let mut items = Vec::new();
    for r in recs {
        let d = parse_proposal(&r)?;
        if status.is_some_and(|s| s != d.status) {
            continue;
        }
        let n = supports.get(&r.id).copied().unwrap_or(0);
        items.push((r, d, n));
    }
    if sort == "supports" {
        items.sort_by_key(|(_, _, n)| std::cmp::Reverse(*n));
    }
    let total = items.len();
    let items = items.into_iter().skip(offset).take(limit).collect();
    Ok(ProposalsPage { items, total })
}

pub(crate) async fn proposal(
    State(state): State<SharedState>,
    Who(p): Who,
    Path((id, pid)): Path<(String, String)>,
) -> Answer {
    load(&state, &p, &id).await?;
    let rec = proposal_record(&state, &id, &pid).await?;
    Ok(json(
        StatusCode::OK,
        &one_proposal_view(&state, &p, &rec).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProposal {
    title: String,
    body: String,
    #[serde(default)]
    location: Option<[f64; 2]>,
    #[serde(default)]
    scenario: Option<String>,
}

pub(crate) async fn create_proposal(
    State(state): State<SharedState>,
    Who(p): Who,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    check_participant(&p, "proposing")?;
    let me = subject(&p);
    let l = load(&state, &p, &id).await?;
    check_open(&l.c, Action::Propose)?;
    let n: NewProposal = body_as(&body)?;
    let title = part::check_text(&n.title, "title", part::MAX_TITLE).map_err(bad)?;
    let text = part::check_text(&n.body, "body", part::MAX_BODY).map_err(bad)?;
    let location = n.location.map(part::check_point).transpose().map_err(bad)?;
    if location.is_none() && n.scenario.is_none() {
        return Err(bad(
            "a proposal is pinned to a place (location) or drawn as a street change (scenario)",
        )
        .into());
    }
    let geometry = match &n.scenario {
        None => None,
        Some(sid) => {
            let s = crate::scenarios::stored_scenario(&state, sid).await?;
            if s.owner.as_deref() != Some(me.as_str()) && !p.is_admin() {
                return Err(denied(&p, format!("scenario {sid} is not yours: fork it first (POST /api/scenarios/{sid}/fork)")).into());
            }
            crate::scenarios::edits_geometry(&state, &s).await?
        }
    };
    state.participation.limits.take(&me, Limited::Proposal)?;
    check_duplicate(&state, PROPOSAL, &me, &text, |r| {
        r.doc.get("body").and_then(Value::as_str).map(String::from)
    })
    .await?;
    let at = now();
    let doc = ProposalDoc {
        title,
        body: text,
        location,
        scenario: n.scenario,
        geometry,
        status: ProposalStatus::Submitted,
        answer: None,
        milestones: Vec::new(),
        author_name: display_name(&state, &p).await,
        edited_at: None,
        state: ContentState::Visible,
        hidden: None,
    };
    let rec = ParticipationRecord {
        kind: PROPOSAL.into(),
        id: new_id("pr"),
        consultation: Some(id.clone()),
        parent: None,
        author: Some(me),
        created_at: at,
        modified_at: at,
        doc: json!(doc),
    };
    write_for(
        &state,
        &p,
        &id,
        vec![PartOp::Put {
            record: rec.clone(),
            mode: PutMode::Create,
        }],
    )
    .await?;
    let v = proposal_view(&rec, &doc, &p, 0, false);
    Ok(created(
        &v,
        &format!("{}/proposals/{}", consultation_url(&id), rec.id),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProposalEdit {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    body: Option<String>,
}

pub(crate) async fn edit_proposal(
    State(state): State<SharedState>,
    Who(p): Who,
    Path((id, pid)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    check_participant(&p, "editing a proposal")?;
    let l = load(&state, &p, &id).await?;
    let rec = proposal_record(&state, &id, &pid).await?;
    if rec.author.is_none() || rec.author != p.subject {
        return Err(denied(&p, "only its author may edit a proposal").into());
    }
    check_open(&l.c, Action::Propose)?;
    let e: ProposalEdit = body_as(&body)?;
    let mut d = parse_proposal(&rec)?;
    if d.status != ProposalStatus::Submitted || d.state != ContentState::Visible {
        return Err(conflict(format!(
            "proposal {pid} is {}: it can no longer be edited",
            d.status.as_str()
        ))
        .into());
    }
    if let Some(t) = &e.title {
        d.title = part::check_text(t, "title", part::MAX_TITLE).map_err(bad)?;
    }
    if let Some(b) = &e.body {
        d.body = part::check_text(b, "body", part::MAX_BODY).map_err(bad)?;
    }
    let at = now();
    d.edited_at = Some(at);
    let rec = ParticipationRecord {
        modified_at: at,
        doc: json!(d),
        ..rec
    };
    write_for(
        &state,
        &p,
        &id,
        vec![PartOp::Put {
            record: rec.clone(),
            mode: PutMode::Replace,
        }],
    )
    .await?;
    Ok(json(
        StatusCode::OK,
        &one_proposal_view(&state, &p, &rec).await?,
    ))
}

pub(crate) async fn withdraw_proposal(
    State(state): State<SharedState>,
    Who(p): Who,
    Path((id, pid)): Path<(String, String)>,
) -> Answer {
    check_participant(&p, "withdrawing a proposal")?;
    load(&state, &p, &id).await?;
    let rec = proposal_record(&state, &id, &pid).await?;
    if rec.author.is_none() || rec.author != p.subject {
        return Err(denied(&p, "only its author may withdraw a proposal").into());
    }
    let mut d = parse_proposal(&rec)?;
    if d.status == ProposalStatus::Withdrawn {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if !matches!(
        d.status,
        ProposalStatus::Submitted | ProposalStatus::Evaluating
    ) {
        return Err(conflict(format!(
            "proposal {pid} is {}: the planners have decided on it",
            d.status.as_str()
        ))
        .into());
    }
    d.status = ProposalStatus::Withdrawn;
    let rec = ParticipationRecord {
        modified_at: now(),
        doc: json!(d),
        ..rec
    };
    write_for(
        &state,
        &p,
        &id,
        vec![
            PartOp::Put {
                record: rec,
                mode: PutMode::Replace,
            },
            // its supports go back to their people
            PartOp::UnmarkTarget {
                kind: SUPPORT.into(),
                target: pid,
            },
        ],
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn support(
    State(state): State<SharedState>,
    Who(p): Who,
    Path((id, pid)): Path<(String, String)>,
) -> Answer {
    check_participant(&p, "supporting a proposal")?;
    let me = subject(&p);
    let l = load(&state, &p, &id).await?;
    check_open(&l.c, Action::Support)?;
    let rec = proposal_record(&state, &id, &pid).await?;
    let d = parse_proposal(&rec)?;
    if d.state != ContentState::Visible
        || matches!(
            d.status,
            ProposalStatus::Withdrawn | ProposalStatus::Rejected
        )
    {
        return Err(conflict(format!(
            "proposal {pid} takes no supports (it is {})",
            if d.state != ContentState::Visible {
                "hidden"
            } else {
                d.status.as_str()
            }
        ))
        .into());
    }
    check_eligible(&state, &p, &l.c).await?;
    state.participation.limits.take(&me, Limited::Vote)?;
    write_for(
        &state,
        &p,
        &id,
        vec![PartOp::Mark {
            mark: ParticipationMark {
                kind: SUPPORT.into(),
                target: pid.clone(),
                author: me,
                scope: id.clone(),
                value: json!(true),
                at: now(),
            },
            limit: Some(l.c.supports_per_person as u64),
        }],
    )
    .await?;
    Ok(json(
        StatusCode::OK,
        &one_proposal_view(&state, &p, &rec).await?,
    ))
}

pub(crate) async fn unsupport(
    State(state): State<SharedState>,
    Who(p): Who,
    Path((id, pid)): Path<(String, String)>,
) -> Answer {
    take_back(
        &state,
        &p,
        &id,
        Action::Support,
        SUPPORT,
        &pid,
        "supporting a proposal",
    )
    .await?;
    let rec = proposal_record(&state, &id, &pid).await?;
    Ok(json(
        StatusCode::OK,
        &one_proposal_view(&state, &p, &rec).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    status: ProposalStatus,
    text: String,
}

/// Checks that `p` manages the consultation and that answers are open.
fn check_manager(p: &Principal, c: &Consultation) -> Result<(), ApiError> {
    if !part::may_manage_consultation(p, c.owner.as_deref()) {
        return Err(denied(
            p,
            "only the consultation's planner or an administrator answers proposals",
        ));
    }
    if !c.feedback_opened(Utc::now()) {
        return Err(conflict(
            "proposals are answered once the feedback phase has opened",
        ));
    }
    Ok(())
}

/// The author (unless it is `me`) and the followers of the consultation, each once.
async fn audience(
    state: &SharedState,
    c: &str,
    author: Option<&str>,
    me: &str,
) -> Result<Vec<String>, ApiError> {
    let mut to: Vec<String> = followers(state, c).await?;
    if let Some(a) = author {
        to.push(a.to_string());
    }
    to.sort();
    to.dedup();
    to.retain(|a| a != me);
    Ok(to)
}

pub(crate) async fn answer(
    State(state): State<SharedState>,
    Who(p): Who,
    Path((id, pid)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let l = load(&state, &p, &id).await?;
    check_manager(&p, &l.c)?;
    let a: AnswerBody = body_as(&body)?;
    if a.status == ProposalStatus::Withdrawn {
        return Err(bad("only its author withdraws a proposal").into());
    }
    let text = part::check_text(&a.text, "text", part::MAX_BODY).map_err(bad)?;
    let rec = proposal_record(&state, &id, &pid).await?;
    let mut d = parse_proposal(&rec)?;
    if d.status == ProposalStatus::Withdrawn {
        return Err(conflict(format!("proposal {pid} was withdrawn by its author")).into());
    }
    let at = now();
    d.status = a.status;
    d.answer = Some(part::Answer {
        text,
        by: subject(&p),
        at,
    });
    let rec = ParticipationRecord {
        modified_at: at,
        doc: json!(d),
        ..rec
    };
    let mut ops = vec![PartOp::Put {
        record: rec.clone(),
        mode: PutMode::Replace,
    }];
    for to in audience(&state, &id, rec.author.as_deref(), &subject(&p)).await? {
        ops.push(notification(
            &to,
            &id,
            "answer",
            &pid,
            LangText::from([
                (
                    "en".into(),
                    format!("The planners answered “{}”: {}", d.title, d.status.as_str()),
                ),
                (
                    "fi".into(),
                    format!(
                        "Suunnittelijat vastasivat ehdotukseen ”{}”: {}",
                        d.title,
                        d.status.as_str()
                    ),
                ),
            ]),
        ));
    }
    write_for(&state, &p, &id, ops).await?;
    state
        .store
        .append_audit(
            &p.label(),
            "proposal.answer",
            &pid,
            json!({"consultation": id, "status": d.status}),
        )
        .await?;
    Ok(json(
        StatusCode::OK,
        &one_proposal_view(&state, &p, &rec).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MilestoneBody {
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    at: Option<chrono::DateTime<Utc>>,
}

pub(crate) async fn milestone(
    State(state): State<SharedState>,
    Who(p): Who,
    Path((id, pid)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let l = load(&state, &p, &id).await?;
    check_manager(&p, &l.c)?;
    let m: MilestoneBody = body_as(&body)?;
    let title = part::check_text(&m.title, "title", part::MAX_TITLE).map_err(bad)?;
    let text = if m.body.trim().is_empty() {
        String::new()
    } else {
        part::check_text(&m.body, "body", part::MAX_BODY).map_err(bad)?
    };
    let rec = proposal_record(&state, &id, &pid).await?;
    let mut d = parse_proposal(&rec)?;
    if d.milestones.len() >= 100 {
        return Err(conflict("a proposal holds at most 100 milestones").into());
    }
    let at = now();
    d.milestones.push(Milestone {
        at: m.at.unwrap_or(at),
        title: title.clone(),
        body: text,
    });
    d.milestones.sort_by_key(|m| m.at);
    let rec = ParticipationRecord {
        modified_at: at,
        doc: json!(d),
        ..rec
    };
    let mut ops = vec![PartOp::Put {
        record: rec.clone(),
        mode: PutMode::Replace,
    }];
    for to in audience(&state, &id, rec.author.as_deref(), &subject(&p)).await? {
        ops.push(notification(
            &to,
            &id,
            "milestone",
            &pid,
            LangText::from([
                ("en".into(), format!("“{}”: {title}", d.title)),
                ("fi".into(), format!("”{}”: {title}", d.title)),
            ]),
        ));
    }
    write_for(&state, &p, &id, ops).await?;
    Ok(created(
        &one_proposal_view(&state, &p, &rec).await?,
        &format!("{}/proposals/{pid}", consultation_url(&id)),
    ))
}

// ---------------------------------------------------------------------------------------------------------------
// surveys, follows

fn survey_target(id: &str, sid: &str) -> String {
    format!("{id}/{sid}")
}

pub(crate) async fn survey_response(
    State(state): State<SharedState>,
    Who(p): Who,
    Path((id, sid)): Path<(String, String)>,
) -> Answer {
    check_participant(&p, "reading your survey answers")?;
    let l = load(&state, &p, &id).await?;
    if l.c.survey(&sid).is_none() {
        return Err(ApiError::not_found(format!("consultation {id} has no survey {sid}")).into());
    }
    let mine = my_marks(&state, &p, SURVEY, &[survey_target(&id, &sid)]).await?;
    match mine.into_values().next() {
        Some(answers) => Ok(json(
            StatusCode::OK,
            &json!({"survey": sid, "answers": answers}),
        )),
        None => Err(ApiError::not_found(format!("you have not answered survey {sid}")).into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SurveyBody {
    answers: Value,
}

pub(crate) async fn answer_survey(
    State(state): State<SharedState>,
    Who(p): Who,
    Path((id, sid)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    check_participant(&p, "answering a survey")?;
    let me = subject(&p);
    let l = load(&state, &p, &id).await?;
    check_open(&l.c, Action::Survey)?;
    let survey =
        l.c.survey(&sid)
            .ok_or_else(|| ApiError::not_found(format!("consultation {id} has no survey {sid}")))?;
    let b: SurveyBody = body_as(&body)?;
    let answers = survey.check_answers(&b.answers).map_err(bad)?;
    check_eligible(&state, &p, &l.c).await?;
    state.participation.limits.take(&me, Limited::Vote)?;
    let out = write(
        &state,
        vec![PartOp::Mark {
            mark: ParticipationMark {
                kind: SURVEY.into(),
                target: survey_target(&id, &sid),
                author: me,
                scope: id.clone(),
                value: answers.clone(),
                at: now(),
            },
            limit: None,
        }],
    )
    .await?;
    let status = if out[0].created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &json!({"survey": sid, "answers": answers})))
}

pub(crate) async fn follow(
    State(state): State<SharedState>,
    Who(p): Who,
    Path(id): Path<String>,
) -> Answer {
    check_participant(&p, "following a consultation")?;
    let me = subject(&p);
    load(&state, &p, &id).await?;
    state.participation.limits.take(&me, Limited::Vote)?;
    write(
        &state,
        vec![PartOp::Mark {
            mark: ParticipationMark {
                kind: FOLLOW.into(),
                target: id.clone(),
                author: me,
                scope: id.clone(),
                value: json!(true),
                at: now(),
            },
            limit: None,
        }],
    )
    .await?;
    Ok(json(
        StatusCode::OK,
        &json!({"consultation": id, "following": true}),
    ))
}

pub(crate) async fn unfollow(
    State(state): State<SharedState>,
    Who(p): Who,
    Path(id): Path<String>,
) -> Answer {
    check_participant(&p, "following a consultation")?;
    load(&state, &p, &id).await?;
    write(
        &state,
        vec![PartOp::Unmark {
            kind: FOLLOW.into(),
            target: id.clone(),
            author: subject(&p),
        }],
    )
    .await?;
    Ok(json(
        StatusCode::OK,
        &json!({"consultation": id, "following": false}),
    ))
}

/// Stances per scenario (`_general` for the consultation as a whole): the latest of each participant.
pub(crate) async fn stances(
    state: &SharedState,
    id: &str,
) -> Result<BTreeMap<String, BTreeMap<String, u64>>, ApiError> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for t in state
        .store
        .participation_tally(STANCE, None, Some(id), true)
        .await?
    {
        let key = t
            .target
            .strip_prefix(&format!("{id}/"))
            .unwrap_or(&t.target)
            .to_string();
        let e = out.entry(key).or_insert_with(|| {
            Stance::ALL
                .iter()
                .map(|s| (s.as_str().to_string(), 0))
                .collect()
        });
        if let Some(s) = t.value.as_str() {
            *e.entry(s.to_string()).or_default() += t.count;
        }
    }
    Ok(out)
}
