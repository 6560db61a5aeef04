//! `/entityOperations`: batch create, upsert, update, merge and delete in one durable transaction with a result per
//! entity, and `POST /entityOperations/query` (ETSI GS CIM 009 clause 5.6.7–5.6.10, 5.7.2).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use serde_json::{json, Value};
use std::sync::Arc;
use twin_model::geoquery::GeoQuery;
use twin_model::ngsi::parse_entity;
use twin_model::ops;
use twin_model::query::{parse_q, parse_scope_q, parse_types, TypeExpr};

use twin_model::context::Context;
use twin_model::{NgsiError, Provenance};
use twin_store::{ChangeOutcome, EntityChange, EntityQuery};

use crate::entities::{read_body, render_many, resolve_dataset};
use crate::error::{problem_json, ApiError, ApiResult};
use crate::guard::Guard;
use crate::ld;
use crate::params::{self, Params};
use crate::{json_response, provenance, SharedState};

/// The largest batch accepted in one request.
pub const MAX_BATCH: usize = 10_000;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/entityOperations/create", post(batch_create))
        .route("/entityOperations/upsert", post(batch_upsert))
        .route("/entityOperations/update", post(batch_update))
        .route("/entityOperations/merge", post(batch_merge))
        .route("/entityOperations/delete", post(batch_delete))
        .route("/entityOperations/query", post(query_post))
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Create,
    UpsertReplace,
    UpsertUpdate,
    Update { no_overwrite: bool },
    Merge,
}

fn array(v: Value) -> ApiResult<Vec<Value>> {
    match v {
        Value::Array(a) if a.is_empty() => Err(ApiError::bad_data("the batch is empty")),
        Value::Array(a) if a.len() > MAX_BATCH => Err(ApiError::bad_data(format!(
            "a batch holds at most {MAX_BATCH} items, this one has {}",
            a.len()
        ))),
        Value::Array(a) => Ok(a),
        _ => Err(ApiError::bad_data(
            "a batch operation body must be a JSON array",
        )),
    }
}

fn item_id(v: &Value) -> String {
    v.get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Parses and validates the items of a batch into changes; items that fail get their error.
type Prepared = (Vec<Value>, Vec<(String, EntityChange)>);

fn prepare(items: Vec<Value>, op: Op, ctx: &Arc<Context>, prov: &Provenance) -> Prepared {
    let now = Utc::now();
    let mut errors: Vec<Value> = Vec::new();
    let mut changes: Vec<(String, EntityChange)> = Vec::new();
    for item in items {
        let id = item_id(&item);
        let parsed = match op {
            Op::Merge | Op::Update { .. } => {
                // fragments: id (and optionally type) plus attributes
                if !twin_model::ngsi::is_uri(&id) {
                    Err(NgsiError::bad_data("each item needs an id that is a URI"))
                } else {
                    Ok(None)
                }
            }
            _ => parse_entity(&item, ctx, now, prov).map(Some),
        };
        let entity = match parsed {
            Ok(e) => e,
            Err(e) => {
                errors.push(json!({"entityId": id, "error": problem_json(&e)}));
                continue;
            }
        };
        let ctx = ctx.clone();
        let prov2 = prov.clone();
        let change: EntityChange = match (op, entity) {
            (Op::Create, Some(entity)) => Box::new(move |cur| {
                if cur.is_some() {
                    return Err(NgsiError::exists(format!(
                        "entity {} already exists",
                        entity.id
                    )));
                }
                let written = ops::all_instances(&entity);
                Ok(ChangeOutcome::Put {
                    entity,
                    written,
                    removed: vec![],
                    result: Value::Null,
                })
            }),
            (Op::UpsertReplace, Some(entity)) => Box::new(move |cur| match cur {
                None => {
                    let written = ops::all_instances(&entity);
                    Ok(ChangeOutcome::Put {
                        entity,
                        written,
                        removed: vec![],
                        result: Value::Null,
                    })
                }
                Some(old) => {
                    let (entity, r) = ops::replace_entity(&old, entity, Utc::now());
                    Ok(ChangeOutcome::Put {
                        entity,
                        written: r.written,
                        removed: r.removed,
                        result: Value::Null,
                    })
                }
            }),
            (Op::UpsertUpdate, Some(entity)) => Box::new(move |cur| match cur {
                None => {
                    let written = ops::all_instances(&entity);
                    Ok(ChangeOutcome::Put {
                        entity,
                        written,
                        removed: vec![],
                        result: Value::Null,
                    })
                }
                Some(mut old) => {
                    for t in &entity.types {
                        if !old.types.contains(t) {
                            old.types.push(t.clone());
                        }
                    }
                    let r = ops::append(&mut old, entity.attrs, false, Utc::now());
                    Ok(ChangeOutcome::Put {
                        entity: old,
                        written: r.written,
                        removed: r.removed,
                        result: Value::Null,
                    })
                }
            }),
            (Op::Update { no_overwrite }, None) => {
                let m = item.as_object().cloned().unwrap_or_default();
                Box::new(move |cur| {
                    let mut e = cur.ok_or_else(|| NgsiError::not_found("entity does not exist"))?;
                    let attrs = twin_model::ngsi::parse_attributes(&m, &ctx, Utc::now(), &prov2)?;
                    let r = ops::append(&mut e, attrs, no_overwrite, Utc::now());
                    Ok(ChangeOutcome::Put {
                        entity: e,
                        written: r.written,
                        removed: r.removed,
                        result: Value::Null,
                    })
                })
            }
            (Op::Merge, None) => {
                let m = item.as_object().cloned().unwrap_or_default();
                Box::new(move |cur| {
                    let mut e = cur.ok_or_else(|| NgsiError::not_found("entity does not exist"))?;
                    let r = ops::merge_entity(&mut e, &m, &ctx, Utc::now(), &prov2)?;
                    Ok(ChangeOutcome::Put {
                        entity: e,
                        written: r.written,
                        removed: r.removed,
                        result: Value::Null,
                    })
                })
            }
            _ => continue,
        };
        changes.push((id, change));
    }
    (errors, changes)
}

async fn run(
    state: SharedState,
    mut g: Guard,
    headers: HeaderMap,
    body: Bytes,
    op: Op,
) -> ApiResult<Response> {
    let (v, rc) = read_body(&state, &headers, &body, false).await?;
    let items = array(v)?;
    let mut prov = provenance(&headers, &g.principal, "batch");
    resolve_dataset(&state, &mut g, &mut prov).await?;
    // parsing and validating thousands of entities is CPU work: off the async runtime
    let ctx = rc.ctx.clone();
    let (mut errors, changes) =
        tokio::task::spawn_blocking(move || prepare(items, op, &ctx, &prov))
            .await
            .map_err(|e| {
                ApiError::new(
                    twin_model::ErrorKind::InternalError,
                    format!("batch preparation failed: {e}"),
                )
            })?;
    let ids: Vec<String> = changes.iter().map(|(i, _)| i.clone()).collect();
    let changes = changes
        .into_iter()
        .map(|(id, c)| (id, g.guard_change(c)))
        .collect::<Vec<_>>();
    let results = if changes.is_empty() {
        vec![]
    } else {
        state.store.write_batch(changes).await?
    };
    let mut success = Vec::new();
    let mut created = Vec::new();
    for (id, r) in ids.into_iter().zip(results) {
        match r {
            Ok(w) => {
                if w.created {
                    created.push(id.clone());
                }
                success.push(id);
            }
            Err(mut e) => {
                if e.detail == "entity does not exist" {
                    e.detail = format!("entity {id} does not exist");
                }
                errors.push(json!({"entityId": id, "error": problem_json(&e)}));
            }
        }
    }
    let _ = ld::LD_REL;
    Ok(batch_response(op, success, created, errors))
}

fn batch_response(
    op: Op,
    success: Vec<String>,
    created: Vec<String>,
    errors: Vec<Value>,
) -> Response {
    let json_resp = |status: StatusCode, v: Value| {
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response()
    };
    if !errors.is_empty() {
        return json_resp(
            StatusCode::MULTI_STATUS,
            json!({"success": success, "errors": errors}),
        );
    }
    match op {
        Op::Create => json_resp(StatusCode::CREATED, json!(success)),
        Op::UpsertReplace | Op::UpsertUpdate if !created.is_empty() => {
            json_resp(StatusCode::CREATED, json!(created))
        }
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn batch_create(
    State(s): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &["local"])?;
    run(s, g, headers, body, Op::Create).await
}

async fn batch_upsert(
    State(s): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &["options", "local"])?;
    let o = p.options();
    if o.contains("update") && o.contains("replace") {
        return Err(ApiError::bad_data(
            "options update and replace exclude each other",
        ));
    }
    run(
        s,
        g,
        headers,
        body,
        if o.contains("update") {
            Op::UpsertUpdate
        } else {
            Op::UpsertReplace
        },
    )
    .await
}

async fn batch_update(
    State(s): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &["options", "local"])?;
    run(
        s,
        g,
        headers,
        body,
        Op::Update {
            no_overwrite: p.options().contains("noOverwrite"),
        },
    )
    .await
}

async fn batch_merge(
    State(s): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &["local"])?;
    run(s, g, headers, body, Op::Merge).await
}

async fn batch_delete(
    State(state): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &["local"])?;
    ld::body_type(&headers, false)?;
    let v = crate::parse_body(&body)?;
    let items = array(v)?;
    let mut errors = Vec::new();
    let mut changes: Vec<(String, EntityChange)> = Vec::new();
    for item in items {
        match item.as_str() {
            Some(id) if twin_model::ngsi::is_uri(id) => changes.push((
                id.to_string(),
                Box::new(|cur| match cur {
                    Some(_) => Ok(ChangeOutcome::Delete),
                    None => Err(NgsiError::not_found("entity does not exist")),
                }),
            )),
            _ => errors.push(json!({"entityId": item, "error": problem_json(&NgsiError::bad_data("not an entity id (URI string)"))})),
        }
    }
    let ids: Vec<String> = changes.iter().map(|(i, _)| i.clone()).collect();
    let changes = changes
        .into_iter()
        .map(|(id, c)| (id, g.guard_change(c)))
        .collect::<Vec<_>>();
    let results = if changes.is_empty() {
        vec![]
    } else {
        state.store.write_batch(changes).await?
    };
    let mut success = Vec::new();
    for (id, r) in ids.into_iter().zip(results) {
        match r {
            Ok(_) => success.push(id),
            Err(mut e) => {
                if e.kind == twin_model::ErrorKind::ResourceNotFound {
                    e.detail = format!("entity {id} does not exist");
                }
                errors.push(json!({"entityId": id, "error": problem_json(&e)}));
            }
        }
    }
    Ok(batch_response(Op::Merge, success, vec![], errors))
}

/// `POST /entityOperations/query`: the query in a body (`type: Query`), paging and options in the URL.
async fn query_post(
    State(state): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let p = Params::parse(
        raw.as_deref(),
        &[
            "limit", "offset", "count", "options", "format", "local", "lang",
        ],
    )?;
    let accept = ld::accept(&headers, true)?;
    let (v, rc) = read_body(&state, &headers, &body, false).await?;
    let m = v
        .as_object()
        .ok_or_else(|| ApiError::bad_data("the query must be a JSON object"))?;
    if m.get("type").and_then(Value::as_str) != Some("Query") {
        return Err(ApiError::bad_data(
            "the query object needs \"type\": \"Query\"",
        ));
    }
    let ctx = rc.ctx.clone();
    let mut q = EntityQuery::default();
    if let Some(ents) = m.get("entities") {
        let list = ents
            .as_array()
            .ok_or_else(|| ApiError::bad_data("entities must be an array of EntitySelectors"))?;
        let mut ids = Vec::new();
        let mut types = Vec::new();
        for sel in list {
            if let Some(id) = sel.get("id").and_then(Value::as_str) {
                ids.push(id.to_string());
            }
            if let Some(p) = sel.get("idPattern").and_then(Value::as_str) {
                q.id_pattern = Some(
                    twin_model::query::compile_regex(p)
                        .map_err(|e| ApiError::bad_data(format!("invalid idPattern: {e}")))?,
                );
            }
            match sel.get("type").and_then(Value::as_str) {
                Some(t) => {
                    let mut te = parse_types(t)?;
                    te.expand_names(&|n| ctx.expand(n));
                    types.push(te);
                }
                None => return Err(ApiError::bad_data("each EntitySelector needs a type")),
            }
        }
        if !ids.is_empty() {
            q.ids = Some(ids);
        }
        if !types.is_empty() {
            q.types = Some(if types.len() == 1 {
                types.remove(0)
            } else {
                TypeExpr::Or(types)
            });
        }
    }
    let mut render_params = String::new();
    if let Some(attrs) = m.get("attrs").and_then(Value::as_array) {
        let names: Vec<String> = attrs
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
        q.attrs = Some(names.iter().map(|a| ctx.expand(a)).collect());
        render_params = format!("attrs={}", names.join(","));
    }
    if let Some(s) = m.get("q").and_then(Value::as_str) {
        let mut qq = parse_q(s)?;
        qq.expand_names(&|n| ctx.expand(n));
        q.q = Some(qq);
    }
    if let Some(s) = m.get("scopeQ").and_then(Value::as_str) {
        q.scope_q = Some(parse_scope_q(s)?);
    }
    if let Some(g) = m.get("geoQ") {
        let mut gq = GeoQuery::from_json(g)?;
        gq.expand_names(&|n| ctx.expand(n));
        q.geo = Some(gq);
    }
    if q.ids.is_none()
        && q.types.is_none()
        && q.attrs.is_none()
        && q.q.is_none()
        && q.geo.is_none()
        && q.scope_q.is_none()
    {
        return Err(ApiError::bad_data(
            "the query needs at least one of entities, attrs, q, geoQ or scopeQ",
        ));
    }
    q.limit = p.usize("limit")?.unwrap_or(state.config.default_limit);
    if q.limit > state.config.max_limit {
        return Err(ApiError::new(
            twin_model::ErrorKind::TooManyResults,
            format!("limit above {}", state.config.max_limit),
        ));
    }
    q.offset = p.usize("offset")?.unwrap_or(0);
    q.count = p.bool("count")?.unwrap_or(false);
    let mut rp = raw.clone().unwrap_or_default();
    if !render_params.is_empty() {
        if !rp.is_empty() {
            rp.push('&');
        }
        rp.push_str(&render_params);
    }
    if let Some(l) = m.get("lang").and_then(Value::as_str) {
        rp.push_str(&format!("&lang={l}"));
    }
    let rparams = Params::parse(
        Some(&rp),
        &[
            "limit", "offset", "count", "options", "format", "local", "lang", "attrs",
        ],
    )?;
    let o = params::render_options(&rparams, &ctx)?;
    let mut q = q;
    g.restrict(&mut q);
    let mut page = state.store.query(&q).await?;
    g.release(&mut page.entities, "ngsi-ld.query");
    let out = render_many(&page.entities, &ctx, &o, accept, &rparams);
    let mut resp = json_response(StatusCode::OK, out, accept, &rc);
    if let Some(n) = page.count {
        resp.headers_mut()
            .insert("NGSILD-Results-Count", axum::http::HeaderValue::from(n));
    }
    Ok(resp)
}
