//! A consultation's results: who took part (counts), what they think of each scenario (the latest stance of each
//! participant), proposals by support, survey counts; the located comments and proposals as GeoJSON, every visible
//! contribution as CSV, both without authors (open data, CC0), and their entries in the catalogue.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Value};
use twin_model::participation::{self as part, ContentState, QuestionKind};
use twin_store::PartQuery;

use super::contributions::{parse_comment, parse_proposal, stances, vote_tallies};
use super::*;

/// The licence the results are published under.
pub const RESULTS_LICENCE: &str = "CC0-1.0";

/// Participants, comments, proposals and supports of a consultation.
pub(crate) async fn counts(state: &SharedState, id: &str) -> Result<Value, ApiError> {
    let participants = state
        .store
        .participation_authors(id, &[COMMENT, PROPOSAL], &[VOTE, SUPPORT, SURVEY, STANCE])
        .await?;
    let count = |kind: &'static str| {
        let q = PartQuery {
            kind: kind.into(),
            consultation: Some(id.to_string()),
            limit: 1,
            ..Default::default()
        };
        async move {
            state
                .store
                .participation_list(&q, true)
                .await
                .map(|r| r.1.unwrap_or(0))
        }
    };
    let comments = count(COMMENT).await?;
    let proposals = count(PROPOSAL).await?;
    let supports: u64 = state
        .store
        .participation_tally(SUPPORT, None, Some(id), false)
        .await?
        .iter()
        .map(|t| t.count)
        .sum();
    Ok(
        json!({"participants": participants, "comments": comments, "proposals": proposals, "supports": supports}),
    )
}

pub(crate) async fn results(
    State(state): State<SharedState>,
    Who(p): Who,
    Path(id): Path<String>,
) -> Answer {
    let l = load(&state, &p, &id).await?;
    let shared = shared_for(&state, &p, &l, "results", || compute(&state, &l)).await?;
    let mut v = (*shared).clone();
    v["currentPhase"] = json!(l.c.stage(chrono::Utc::now()).as_str());
    Ok(json(StatusCode::OK, &v))
}

/// The results as every reader sees them (shared for a second, see [`super::shared`]).
async fn compute(state: &SharedState, l: &Loaded) -> Result<Value, ApiError> {
    let id = l.c.id.clone();
    let mut v = counts(state, &id).await?;
    v["consultation"] = json!(id);
    v["stance"] = json!(stances(state, &id).await?);
    let supports: HashMap<String, u64> = state
        .store
        .participation_tally(SUPPORT, None, Some(&id), false)
        .await?
        .into_iter()
        .map(|t| (t.target, t.count))
        .collect();
    let (recs, _) = state
        .store
        .participation_list(
            &PartQuery {
                kind: PROPOSAL.into(),
                consultation: Some(id.clone()),
                ..Default::default()
            },
            false,
        )
        .await?;
    let mut proposals = Vec::new();
    for r in &recs {
        let d = parse_proposal(r)?;
        if d.state != ContentState::Visible {
            continue;
        }
        proposals.push(json!({"id": r.id, "title": d.title, "status": d.status,
                              "supports": supports.get(&r.id).copied().unwrap_or(0)}));
    }
    proposals.sort_by_key(|x| std::cmp::Reverse(x["supports"].as_u64().unwrap_or(0)));
    v["proposalsBySupport"] = Value::Array(proposals);
    let mut surveys = serde_json::Map::new();
    for s in &l.c.surveys {
        let marks = state
            .store
            .participation_marks(&MarkQuery {
                kind: Some(SURVEY.into()),
                targets: Some(vec![format!("{id}/{}", s.id)]),
                ..Default::default()
            })
            .await?;
        let mut qs = serde_json::Map::new();
        for q in &s.questions {
            let n = match q.kind {
                QuestionKind::Single | QuestionKind::Multiple => q.options.len(),
                QuestionKind::Scale => 5,
                QuestionKind::Text => 0,
            };
            let mut counts = vec![0u64; n];
            let mut responses = 0u64;
            for m in &marks {
                let a = &m.value[&q.id];
                if a.is_null() {
                    continue;
                }
                responses += 1;
                let mut bump = |i: u64| {
                    if let Some(c) = counts.get_mut(i as usize) {
                        *c += 1;
                    }
                };
                match q.kind {
                    QuestionKind::Single => a.as_u64().into_iter().for_each(&mut bump),
                    QuestionKind::Multiple => a
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_u64)
                        .for_each(&mut bump),
                    QuestionKind::Scale => a
                        .as_u64()
                        .map(|x| x.saturating_sub(1))
                        .into_iter()
                        .for_each(&mut bump),
                    QuestionKind::Text => {}
                }
            }
            // free-text answers are counted, never shown: they may hold what identifies a person
            qs.insert(
                q.id.clone(),
                json!({"kind": q.kind, "counts": counts, "responses": responses}),
            );
        }
        surveys.insert(
            s.id.clone(),
            json!({"responses": marks.len(), "questions": qs}),
        );
    }
    v["surveys"] = Value::Object(surveys);
    Ok(v)
}

/// [`rows`], shared by the readers of the downloads for a second (see [`super::shared`]).
async fn shared_rows(
    state: &SharedState,
    p: &Principal,
    l: &Loaded,
) -> Result<Arc<Vec<Row>>, ApiError> {
    shared_for(state, p, l, "rows", || rows(state, &l.c.id)).await
}

/// Every visible comment and proposal of a consultation (the rows of the open data), oldest first.
async fn rows(state: &SharedState, id: &str) -> Result<Vec<Row>, ApiError> {
    let list = |kind: &'static str| {
        let q = PartQuery {
            kind: kind.into(),
            consultation: Some(id.to_string()),
            ..Default::default()
        };
        async move { state.store.participation_list(&q, false).await.map(|r| r.0) }
    };
    let supports: HashMap<String, u64> = state
        .store
        .participation_tally(SUPPORT, None, Some(id), false)
        .await?
        .into_iter()
        .map(|t| (t.target, t.count))
        .collect();
    let votes = vote_tallies(state, None, Some(id)).await?;
    let mut out = Vec::new();
    for r in list(COMMENT).await? {
        let d = parse_comment(&r)?;
        if d.state != ContentState::Visible {
            continue;
        }
        let (up, down) = votes.get(&r.id).copied().unwrap_or((0, 0));
        out.push(Row {
            kind: "comment",
            id: r.id.clone(),
            created: super::time(r.created_at),
            scenario: d.scenario,
            stance: Some(d.stance.as_str()),
            reply_to: d.reply_to,
            status: None,
            supports: None,
            up: Some(up),
            down: Some(down),
            location: d.location,
            geometry: None,
            title: None,
            body: d.body,
        });
    }
    for r in list(PROPOSAL).await? {
        let d = parse_proposal(&r)?;
        if d.state != ContentState::Visible {
            continue;
        }
        out.push(Row {
            kind: "proposal",
            id: r.id.clone(),
            created: super::time(r.created_at),
            scenario: d.scenario,
            stance: None,
            reply_to: None,
            status: Some(d.status.as_str()),
            supports: Some(supports.get(&r.id).copied().unwrap_or(0)),
            up: None,
            down: None,
            location: d.location,
            geometry: d.geometry,
            title: Some(d.title),
            body: d.body,
        });
    }
    out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    Ok(out)
}

struct Row {
    kind: &'static str,
    id: String,
    created: String,
    scenario: Option<String>,
    stance: Option<&'static str>,
    reply_to: Option<String>,
    status: Option<&'static str>,
    supports: Option<u64>,
    up: Option<u64>,
    down: Option<u64>,
    location: Option<[f64; 2]>,
    geometry: Option<Value>,
    title: Option<String>,
    body: String,
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break; a leading `=`, `+`, `-` or `@` is
/// prefixed with `'` so that spreadsheets do not run it as a formula.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub(crate) async fn csv(
    State(state): State<SharedState>,
    Who(p): Who,
    Path(id): Path<String>,
) -> Answer {
    let l = load(&state, &p, &id).await?;
    let mut out = String::from(
        "type,id,created_at,scenario,stance,reply_to,status,supports,votes_up,votes_down,longitude,latitude,title,text\r\n",
    );
    let opt = |o: Option<String>| o.unwrap_or_default();
    for r in shared_rows(&state, &p, &l).await?.iter() {
        let cells = [
            r.kind.to_string(),
            r.id.clone(),
            r.created.clone(),
            opt(r.scenario.clone()),
            opt(r.stance.map(String::from)),
            opt(r.reply_to.clone()),
            opt(r.status.map(String::from)),
            opt(r.supports.map(|x| x.to_string())),
            opt(r.up.map(|x| x.to_string())),
            opt(r.down.map(|x| x.to_string())),
            opt(r.location.map(|l| l[0].to_string())),
            opt(r.location.map(|l| l[1].to_string())),
            opt(r.title.clone()),
            r.body.clone(),
        ];
        out.push_str(&cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-results.csv\"", id),
            ),
        ],
        out,
    )
        .into_response())
}

pub(crate) async fn geojson(
    State(state): State<SharedState>,
    Who(p): Who,
    Path(id): Path<String>,
) -> Answer {
    let l = load(&state, &p, &id).await?;
    let features: Vec<Value> = shared_rows(&state, &p, &l)
        .await?
        .iter()
        .filter_map(|r| {
            let geometry = match (&r.location, &r.geometry) {
                (Some(l), _) => json!({"type": "Point", "coordinates": l}),
                (None, Some(g)) => g.clone(),
                (None, None) => return None,
            };
            Some(json!({
                "type": "Feature",
                "id": r.id,
                "geometry": geometry,
                "properties": {
                    "type": r.kind, "createdAt": r.created, "scenario": r.scenario, "stance": r.stance,
                    "replyTo": r.reply_to, "status": r.status, "supports": r.supports, "votesUp": r.up,
                    "votesDown": r.down, "title": r.title, "text": r.body,
                }
            }))
        })
        .collect();
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/geo+json")],
        json!({"type": "FeatureCollection", "features": features, "license": RESULTS_LICENCE})
            .to_string(),
    )
        .into_response())
}

/// A published consultation's results as a catalogue entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultsEntry {
    pub id: String,
    pub title: String,
    pub description: String,
    pub publisher: Option<String>,
    pub issued: chrono::DateTime<chrono::Utc>,
    pub modified: chrono::DateTime<chrono::Utc>,
    pub bbox: Option<[f64; 4]>,
    /// The consultation's page, CSV and GeoJSON paths (relative to the server's URL).
    pub page: String,
    pub csv: String,
    pub geojson: String,
}

/// The published consultations, as catalogue entries of their results.
pub async fn catalogue_entries(state: &SharedState) -> Result<Vec<ResultsEntry>, ApiError> {
    let (recs, _) = state
        .store
        .participation_list(
            &PartQuery {
                kind: CONSULTATION.into(),
                ..Default::default()
            },
            false,
        )
        .await?;
    let mut out = Vec::new();
    for r in recs {
        let c = parse_consultation(&r)?;
        if !c.published {
            continue;
        }
        let title = part::pick(&c.title, "en").unwrap_or(&c.id).to_string();
        let summary = part::pick(&c.summary, "en").unwrap_or("").to_string();
        let url = consultation_url(&c.id);
        out.push(ResultsEntry {
            id: c.id.clone(),
            title: format!("Consultation results: {title}"),
            description: format!(
                "What participants said in the consultation “{title}”: comments with their stance, proposals with \
                 their supports and the planners' answers, without authors. {summary}"
            )
            .trim()
            .to_string(),
            publisher: c.organisation.clone().or(c.owner.clone()),
            issued: r.created_at,
            modified: r.modified_at,
            bbox: c.area,
            page: format!("/?consultation={}", path_segment(&c.id)),
            csv: format!("{url}/results.csv"),
            geojson: format!("{url}/results.geojson"),
        });
    }
    Ok(out)
}
