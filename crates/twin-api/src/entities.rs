//! `/entities`: create, retrieve, query, replace, merge-patch and delete entities, and append, update, partially
//! update, replace and delete their attributes (ETSI GS CIM 009 clauses 5.6 and 5.7).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::Router;
use chrono::Utc;
use serde_json::{json, Value};
use twin_model::context::Context;
use twin_model::entity::iri;
use twin_model::ngsi::{
    parse_attribute, parse_attributes, parse_entity, render_entity, render_feature, RenderOptions,
};
use twin_model::ops::{self, UpdateReport};
use twin_model::{dataset::DEFAULT_DATASET, Entity, NgsiError, Provenance};
use twin_store::{ChangeOutcome, EntityChange};

use crate::error::{ApiError, ApiResult};
use crate::guard::Guard;
use crate::ld::{self, Accept, BodyType, RequestContext};
use crate::params::{self, Params};
use crate::{json_response, parse_body, provenance, SharedState};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/entities", get(query_entities).post(create_entity))
        .route(
            "/entities/{id}",
            get(retrieve_entity)
                .delete(delete_entity)
                .put(replace_entity)
                .patch(merge_entity),
        )
        .route(
            "/entities/{id}/attrs",
            patch(update_attrs).post(append_attrs),
        )
        .route(
            "/entities/{id}/attrs/{attr}",
            patch(partial_update_attr)
                .put(replace_attr)
                .delete(delete_attr),
        )
}

/// Reads a JSON body and the request context (from the body for ld+json, else from the Link header).
pub async fn read_body(
    state: &SharedState,
    headers: &HeaderMap,
    body: &Bytes,
    allow_merge_patch: bool,
) -> ApiResult<(Value, RequestContext)> {
    let bt = ld::body_type(headers, allow_merge_patch)?;
    let v = parse_body(body)?;
    let body_ctx = match &v {
        Value::Object(m) => m.get("@context").cloned(),
        Value::Array(items) if bt == BodyType::JsonLd => {
            // batch: every entity carries its context; they must agree
            let first = items.first().and_then(|i| i.get("@context")).cloned();
            if items.iter().any(|i| i.get("@context") != first.as_ref()) {
                return Err(ApiError::bad_data(
                    "every entity of an application/ld+json batch must carry the same @context",
                ));
            }
            first
        }
        _ => None,
    };
    let rc = ld::request_context(state, headers, Some(bt), body_ctx.as_ref()).await?;
    Ok((v, rc))
}

fn entity_url(id: &str) -> String {
    format!("/ngsi-ld/v1/entities/{}", crate::path_segment(id))
}

/// Checks the dataset a write names exists (and is the tenant's, in a tenant), and stamps the entity with it; a
/// write naming none goes to the tenant's dataset (made on the tenant's first create) or the default dataset.
pub async fn resolve_dataset(
    state: &SharedState,
    g: &mut Guard,
    prov: &mut Provenance,
) -> ApiResult<()> {
    match &prov.dataset {
        None => {
            prov.dataset = Some(
                crate::tenants::write_dataset(state, g)
                    .await?
                    .unwrap_or_else(|| DEFAULT_DATASET.into()),
            )
        }
        Some(d) => {
            // the guard's datasets are those of this request's configuration epoch; one made since is read anew
            let known = match g.dataset(d).cloned() {
                Some(ds) => Some(ds),
                None => state.store.get_dataset(d).await?,
            };
            let Some(ds) = known else {
                return Err(ApiError::bad_data(format!(
                    "dataset {d} does not exist; create it first with POST /api/datasets"
                )));
            };
            if let Some(t) = g.tenant() {
                if !crate::tenants::holds(t, &ds) {
                    return Err(ApiError::bad_data(format!(
                        "dataset {d} is not part of tenant {t} (organisation {t} does not own it)"
                    )));
                }
            }
        }
    }
    Ok(())
}

async fn create_entity(
    State(state): State<SharedState>,
    mut g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &["local"])?;
    let (v, rc) = read_body(&state, &headers, &body, false).await?;
    let mut prov = provenance(&headers, &g.principal, "ngsi-ld");
    resolve_dataset(&state, &mut g, &mut prov).await?;
    let entity = parse_entity(&v, &rc.ctx, Utc::now(), &prov)?;
    let id = entity.id.clone();
    let change: EntityChange = Box::new(move |cur| {
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
    });
    state.store.write(&id, g.guard_change(change)).await?;
    Ok(crate::created(&entity_url(&id)))
}

async fn query_entities(
    State(state): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), params::QUERY_PARAMS)?;
    let accept = ld::accept(&headers, true)?;
    let rc = ld::request_context(&state, &headers, None, None).await?;
    let mut q = params::entity_query(
        &p,
        &rc.ctx,
        state.config.default_limit,
        state.config.max_limit,
    )?;
    let o = params::render_options(&p, &rc.ctx)?;
    g.restrict(&mut q);
    let mut page = state.store.query(&q).await?;
    g.release(&mut page.entities, "ngsi-ld.query");
    let body = render_many(&page.entities, &rc.ctx, &o, accept, &p);
    let mut resp = json_response(StatusCode::OK, body, accept, &rc);
    if let Some(n) = page.count {
        resp.headers_mut()
            .insert("NGSILD-Results-Count", HeaderValue::from(n));
    }
    Ok(resp)
}

/// Renders a list of entities (a FeatureCollection for GeoJSON).
pub fn render_many(
    entities: &[Entity],
    ctx: &Context,
    o: &RenderOptions,
    accept: Accept,
    p: &Params,
) -> Value {
    if accept == Accept::GeoJson {
        let gp = geometry_property(p, ctx);
        let features: Vec<Value> = entities
            .iter()
            .map(|e| render_feature(e, ctx, o, &gp))
            .collect();
        json!({"type": "FeatureCollection", "features": features})
    } else {
        Value::Array(entities.iter().map(|e| render_entity(e, ctx, o)).collect())
    }
}

fn geometry_property(p: &Params, ctx: &Context) -> String {
    p.get("geometryProperty")
        .map(|g| ctx.expand(g))
        .unwrap_or_else(|| iri::LOCATION.to_string())
}

async fn retrieve_entity(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(
        raw.as_deref(),
        &[
            "attrs",
            "pick",
            "omit",
            "options",
            "format",
            "lang",
            "geometryProperty",
            "type",
            "local",
            "datasetId",
            "join",
            "joinLevel",
            "entityMap",
            "containedBy",
        ],
    )?;
    check_id(&id)?;
    let accept = ld::accept(&headers, true)?;
    let rc = ld::request_context(&state, &headers, None, None).await?;
    let o = params::render_options(&p, &rc.ctx)?;
    let mut e = state
        .store
        .get(&id)
        .await?
        .filter(|e| g.sees(e))
        .ok_or_else(|| ApiError::not_found(format!("entity {id} does not exist")))?;
    g.release(std::slice::from_mut(&mut e), "ngsi-ld.retrieve");
    if let Some(t) = p.get("type") {
        let mut te = twin_model::query::parse_types(t)?;
        te.expand_names(&|n| rc.ctx.expand(n));
        if !te.matches(&e.types) {
            return Err(ApiError::not_found(format!(
                "entity {id} is not of type {t}"
            )));
        }
    }
    let body = if accept == Accept::GeoJson {
        render_feature(&e, &rc.ctx, &o, &geometry_property(&p, &rc.ctx))
    } else {
        render_entity(&e, &rc.ctx, &o)
    };
    Ok(json_response(StatusCode::OK, body, accept, &rc))
}

pub fn check_id(id: &str) -> ApiResult<()> {
    if twin_model::ngsi::is_uri(id) {
        Ok(())
    } else {
        Err(ApiError::bad_data(format!(
            "{id:?} is not a valid entity id (a URI such as urn:ngsi-ld:Building:1)"
        )))
    }
}

async fn delete_entity(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<StatusCode> {
    Params::parse(raw.as_deref(), &["type", "local"])?;
    check_id(&id)?;
    let change: EntityChange = Box::new(|cur| match cur {
        Some(_) => Ok(ChangeOutcome::Delete),
        None => Err(NgsiError::not_found("entity does not exist")),
    });
    state
        .store
        .write(&id, g.guard_change(change))
        .await
        .map_err(|e| not_found_as(e, &id))?;
    Ok(StatusCode::NO_CONTENT)
}

fn not_found_as(e: NgsiError, id: &str) -> ApiError {
    if e.kind == twin_model::ErrorKind::ResourceNotFound && e.detail == "entity does not exist" {
        ApiError::not_found(format!("entity {id} does not exist"))
    } else {
        ApiError(e)
    }
}

async fn replace_entity(
    State(state): State<SharedState>,
    mut g: Guard,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<StatusCode> {
    Params::parse(raw.as_deref(), &["local"])?;
    check_id(&id)?;
    let (mut v, rc) = read_body(&state, &headers, &body, false).await?;
    if let Value::Object(m) = &mut v {
        match m.get("id") {
            Some(Value::String(b)) if b != &id => {
                return Err(ApiError::bad_data(format!(
                    "the body's id {b} differs from the id in the URL {id}"
                )))
            }
            None => {
                m.insert("id".into(), Value::String(id.clone()));
            }
            _ => {}
        }
    }
    let mut prov = provenance(&headers, &g.principal, "ngsi-ld");
    resolve_dataset(&state, &mut g, &mut prov).await?;
    let new = parse_entity(&v, &rc.ctx, Utc::now(), &prov)?;
    let change: EntityChange = Box::new(move |cur| {
        let old = cur.ok_or_else(|| NgsiError::not_found("entity does not exist"))?;
        let (entity, r) = ops::replace_entity(&old, new, Utc::now());
        Ok(ChangeOutcome::Put {
            entity,
            written: r.written,
            removed: r.removed,
            result: Value::Null,
        })
    });
    state
        .store
        .write(&id, g.guard_change(change))
        .await
        .map_err(|e| not_found_as(e, &id))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn merge_entity(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<StatusCode> {
    Params::parse(raw.as_deref(), &["local", "options", "format", "type"])?;
    check_id(&id)?;
    let (v, rc) = read_body(&state, &headers, &body, true).await?;
    let frag = v
        .as_object()
        .cloned()
        .ok_or_else(|| ApiError::bad_data("a merge-patch body must be a JSON object"))?;
    if let Some(Value::String(b)) = frag.get("id") {
        if b != &id {
            return Err(ApiError::bad_data(format!(
                "the body's id {b} differs from the id in the URL {id}"
            )));
        }
    }
    let prov = provenance(&headers, &g.principal, "ngsi-ld");
    let ctx = rc.ctx.clone();
    let change: EntityChange = Box::new(move |cur| {
        let mut e = cur.ok_or_else(|| NgsiError::not_found("entity does not exist"))?;
        let now = Utc::now();
        let r = ops::merge_entity(&mut e, &frag, &ctx, now, &prov)?;
        if let Some(t) = frag.get("type") {
            let types = twin_model::ngsi::parse_types_member(Some(t), &ctx)?.unwrap_or_default();
            for t in types {
                if !e.types.contains(&t) {
                    e.types.push(t);
                }
            }
        }
        Ok(ChangeOutcome::Put {
            entity: e,
            written: r.written,
            removed: r.removed,
            result: Value::Null,
        })
    });
    state
        .store
        .write(&id, g.guard_change(change))
        .await
        .map_err(|e| not_found_as(e, &id))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of a 207 response for updates that partly failed.
pub fn update_result(r: &UpdateReport, ctx: &Context) -> Value {
    let mut updated: Vec<String> = r.written.iter().map(|(n, _)| ctx.compact(n)).collect();
    updated.dedup();
    json!({
        "updated": updated,
        "notUpdated": r.not_updated.iter().map(|(n, reason)| json!({"attributeName": ctx.compact(n), "reason": reason})).collect::<Vec<_>>(),
    })
}

fn report_response(r: Value) -> Response {
    let not_updated = r
        .get("notUpdated")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if not_updated {
        (
            StatusCode::MULTI_STATUS,
            [(header::CONTENT_TYPE, "application/json")],
            r.to_string(),
        )
            .into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

async fn append_attrs(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &["options", "local", "type"])?;
    check_id(&id)?;
    let no_overwrite = p.options().contains("noOverwrite");
    let (v, rc) = read_body(&state, &headers, &body, false).await?;
    let prov = provenance(&headers, &g.principal, "ngsi-ld");
    let m = v
        .as_object()
        .ok_or_else(|| ApiError::bad_data("the attributes to append must be a JSON object"))?;
    let attrs = parse_attributes(m, &rc.ctx, Utc::now(), &prov)?;
    let ctx = rc.ctx.clone();
    let change: EntityChange = Box::new(move |cur| {
        let mut e = cur.ok_or_else(|| NgsiError::not_found("entity does not exist"))?;
        let r = ops::append(&mut e, attrs, no_overwrite, Utc::now());
        let result = update_result(&r, &ctx);
        Ok(ChangeOutcome::Put {
            entity: e,
            written: r.written,
            removed: r.removed,
            result,
        })
    });
    let w = state
        .store
        .write(&id, g.guard_change(change))
        .await
        .map_err(|e| not_found_as(e, &id))?;
    Ok(report_response(w.result))
}

async fn update_attrs(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &["options", "local", "type"])?;
    check_id(&id)?;
    let (v, rc) = read_body(&state, &headers, &body, false).await?;
    let prov = provenance(&headers, &g.principal, "ngsi-ld");
    let m = v
        .as_object()
        .ok_or_else(|| ApiError::bad_data("the attributes to update must be a JSON object"))?;
    let attrs = parse_attributes(m, &rc.ctx, Utc::now(), &prov)?;
    let ctx = rc.ctx.clone();
    let change: EntityChange = Box::new(move |cur| {
        let mut e = cur.ok_or_else(|| NgsiError::not_found("entity does not exist"))?;
        let r = ops::update(&mut e, attrs, Utc::now());
        let result = update_result(&r, &ctx);
        if r.written.is_empty() {
            return Ok(ChangeOutcome::Nothing { result });
        }
        Ok(ChangeOutcome::Put {
            entity: e,
            written: r.written,
            removed: r.removed,
            result,
        })
    });
    let w = state
        .store
        .write(&id, g.guard_change(change))
        .await
        .map_err(|e| not_found_as(e, &id))?;
    Ok(report_response(w.result))
}

async fn partial_update_attr(
    State(state): State<SharedState>,
    g: Guard,
    Path((id, attr)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<StatusCode> {
    Params::parse(raw.as_deref(), &["local", "type"])?;
    check_id(&id)?;
    twin_model::ngsi::check_name(&attr, "attribute")?;
    let (v, rc) = read_body(&state, &headers, &body, false).await?;
    let prov = provenance(&headers, &g.principal, "ngsi-ld");
    let ctx: Arc<Context> = rc.ctx.clone();
    let name = ctx.expand(&attr);
    let change: EntityChange = Box::new(move |cur| {
        let mut e = cur.ok_or_else(|| NgsiError::not_found("entity does not exist"))?;
        let r = ops::partial_update_attribute(&mut e, &name, &attr, &v, &ctx, Utc::now(), &prov)?;
        Ok(ChangeOutcome::Put {
            entity: e,
            written: r.written,
            removed: r.removed,
            result: Value::Null,
        })
    });
    state
        .store
        .write(&id, g.guard_change(change))
        .await
        .map_err(|e| not_found_as(e, &id))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn replace_attr(
    State(state): State<SharedState>,
    g: Guard,
    Path((id, attr)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<StatusCode> {
    Params::parse(raw.as_deref(), &["local", "type"])?;
    check_id(&id)?;
    twin_model::ngsi::check_name(&attr, "attribute")?;
    let (v, rc) = read_body(&state, &headers, &body, false).await?;
    let prov = provenance(&headers, &g.principal, "ngsi-ld");
    let name = rc.ctx.expand(&attr);
    let instances = parse_attribute(&attr, &v, &rc.ctx, Utc::now(), &prov)?;
    let change: EntityChange = Box::new(move |cur| {
        let mut e = cur.ok_or_else(|| NgsiError::not_found("entity does not exist"))?;
        let r = ops::replace_attribute(&mut e, &name, instances, Utc::now())?;
        Ok(ChangeOutcome::Put {
            entity: e,
            written: r.written,
            removed: r.removed,
            result: Value::Null,
        })
    });
    state
        .store
        .write(&id, g.guard_change(change))
        .await
        .map_err(|e| not_found_as(e, &id))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_attr(
    State(state): State<SharedState>,
    g: Guard,
    Path((id, attr)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<StatusCode> {
    let p = Params::parse(raw.as_deref(), &["datasetId", "deleteAll", "local", "type"])?;
    check_id(&id)?;
    twin_model::ngsi::check_name(&attr, "attribute")?;
    let rc = ld::request_context(&state, &headers, None, None).await?;
    let name = rc.ctx.expand(&attr);
    let all = p.bool("deleteAll")?.unwrap_or(false);
    let ds = p.get("datasetId").map(String::from);
    let change: EntityChange = Box::new(move |cur| {
        let mut e = cur.ok_or_else(|| NgsiError::not_found("entity does not exist"))?;
        let r = ops::delete_attribute(&mut e, &name, ds.as_deref(), all, Utc::now())?;
        Ok(ChangeOutcome::Put {
            entity: e,
            written: r.written,
            removed: r.removed,
            result: Value::Null,
        })
    });
    state
        .store
        .write(&id, g.guard_change(change))
        .await
        .map_err(|e| not_found_as(e, &id))?;
    Ok(StatusCode::NO_CONTENT)
}
