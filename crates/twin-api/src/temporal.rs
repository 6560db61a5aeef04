//! `/temporal/entities`: the history of entities — create and append instances, query with `timerel`, `lastN` and
//! `timeproperty`, simplified (`temporalValues`) and aggregated (`aggrMethods`, `aggrPeriodDuration`) representations,
//! and deletion of histories, attributes and instances (ETSI GS CIM 009 clause 5.6.11–5.6.19, 5.7.3–5.7.4).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::Router;
use chrono::Utc;
use serde_json::{json, Map, Value};
use twin_model::context::Context;
use twin_model::duration::Duration;
use twin_model::entity::AttrKind;
use twin_model::ngsi::{
    format_datetime, parse_attribute, parse_datetime, parse_scope, parse_types_member,
    render_attribute, render_types, Format, RenderOptions,
};
use twin_model::{Attribute, ErrorKind};
use twin_store::{
    AggrMethod, AggregatedEntity, Aggregation, TemporalEntity, TemporalQuery, TimeProperty, TimeRel,
};

use crate::entities::{check_id, read_body};
use crate::error::{ApiError, ApiResult};
use crate::guard::Guard;
use crate::ld::{self, RequestContext};
use crate::params::{self, Params};
use crate::{json_response, provenance, SharedState};

/// Instances returned per attribute when the client sets no `lastN`.
pub const DEFAULT_INSTANCE_LIMIT: usize = 10_000;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/temporal/entities", get(query).post(create_or_append))
        .route(
            "/temporal/entities/{id}",
            get(retrieve).delete(delete_entity),
        )
        .route("/temporal/entities/{id}/attrs", post(append_attrs))
        .route("/temporal/entities/{id}/attrs/{attr}", delete(delete_attr))
        .route(
            "/temporal/entities/{id}/attrs/{attr}/{instance}",
            patch(modify_instance).delete(delete_instance),
        )
        .route("/temporalEntityOperations/query", post(query_post))
}

pub(crate) const TEMPORAL_PARAMS: &[&str] = &[
    "id",
    "type",
    "idPattern",
    "attrs",
    "pick",
    "omit",
    "q",
    "scopeQ",
    "georel",
    "geometry",
    "coordinates",
    "geoproperty",
    "lang",
    "limit",
    "offset",
    "count",
    "options",
    "format",
    "timerel",
    "timeAt",
    "endTimeAt",
    "lastN",
    "timeproperty",
    "aggrMethods",
    "aggrPeriodDuration",
    "local",
    "datasetId",
];

/// Parses the instances of every attribute of a temporal entity fragment (each attribute: an array of instances).
fn parse_instances(
    m: &Map<String, Value>,
    ctx: &Context,
    prov: &twin_model::Provenance,
) -> ApiResult<BTreeMap<String, Vec<Attribute>>> {
    let now = Utc::now();
    let mut out = BTreeMap::new();
    for (k, v) in m {
        if matches!(
            k.as_str(),
            "id" | "type" | "@context" | "scope" | "createdAt" | "modifiedAt"
        ) {
            continue;
        }
        twin_model::ngsi::check_name(k, "attribute")?;
        let items: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let mut list = Vec::new();
        for i in items {
            list.extend(parse_attribute(k, i, ctx, now, prov)?);
        }
        if list.is_empty() {
            return Err(ApiError::bad_data(format!(
                "attribute {k} has no instances"
            )));
        }
        out.insert(ctx.expand(k), list);
    }
    Ok(out)
}

async fn create_or_append(
    State(state): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &["local"])?;
    let (v, rc) = read_body(&state, &headers, &body, false).await?;
    let m = v
        .as_object()
        .ok_or_else(|| ApiError::bad_data("a temporal entity must be a JSON object"))?;
    let id = m
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_data("the temporal entity has no id"))?;
    check_id(id)?;
    let types = parse_types_member(m.get("type"), &rc.ctx)?
        .ok_or_else(|| ApiError::bad_data(format!("temporal entity {id} has no type")))?;
    let scopes = parse_scope(m.get("scope"))?;
    let prov = provenance(&headers, &g.principal, "temporal");
    let attrs = parse_instances(m, &rc.ctx, &prov)?;
    g.check_history_write(id).await?;
    let created = state
        .store
        .temporal_append(id, Some(types), scopes, attrs)
        .await?;
    if created {
        Ok(crate::created(&format!(
            "/ngsi-ld/v1/temporal/entities/{}",
            crate::path_segment(id)
        )))
    } else {
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}

async fn append_attrs(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<StatusCode> {
    Params::parse(raw.as_deref(), &["local"])?;
    check_id(&id)?;
    let (v, rc) = read_body(&state, &headers, &body, false).await?;
    let m = v
        .as_object()
        .ok_or_else(|| ApiError::bad_data("the attributes must be a JSON object"))?;
    let prov = provenance(&headers, &g.principal, "temporal");
    let attrs = parse_instances(m, &rc.ctx, &prov)?;
    let q = TemporalQuery {
        entities: twin_store::EntityQuery {
            ids: Some(vec![id.clone()]),
            limit: 1,
            ..Default::default()
        },
        attrs: Some(vec![]),
        instance_limit: 1,
        ..Default::default()
    };
    g.check_history_write(&id).await?;
    if state.store.temporal_query(&q).await?.is_empty() {
        return Err(ApiError::not_found(format!(
            "temporal entity {id} does not exist"
        )));
    }
    state
        .store
        .temporal_append(&id, None, vec![], attrs)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn timerel(p: &Params) -> ApiResult<Option<TimeRel>> {
    let at = |k: &str| -> ApiResult<Option<chrono::DateTime<Utc>>> {
        p.get(k)
            .map(|s| {
                parse_datetime(s).ok_or_else(|| {
                    ApiError::bad_data(format!("{k} must be a DateTime (RFC 3339), got {s:?}"))
                })
            })
            .transpose()
    };
    let time_at = at("timeAt")?;
    let end = at("endTimeAt")?;
    match p.get("timerel") {
        None if time_at.is_some() => Err(ApiError::bad_data("timeAt needs timerel")),
        None => Ok(None),
        Some(rel) => {
            let t = time_at.ok_or_else(|| ApiError::bad_data("timerel needs timeAt"))?;
            match rel {
                "before" => Ok(Some(TimeRel::Before(t))),
                "after" => Ok(Some(TimeRel::After(t))),
                "between" => {
                    let e =
                        end.ok_or_else(|| ApiError::bad_data("timerel=between needs endTimeAt"))?;
                    if e <= t {
                        return Err(ApiError::bad_data("endTimeAt must be after timeAt"));
                    }
                    Ok(Some(TimeRel::Between(t, e)))
                }
                other => Err(ApiError::bad_data(format!(
                    "timerel must be before, after or between, not {other:?}"
                ))),
            }
        }
    }
}

fn temporal_query(
    p: &Params,
    ctx: &Context,
    state: &SharedState,
    single: Option<&str>,
) -> ApiResult<TemporalQuery> {
    let entities = match single {
        Some(id) => twin_store::EntityQuery {
            ids: Some(vec![id.to_string()]),
            limit: 1,
            ..Default::default()
        },
        None => params::entity_query(p, ctx, state.config.default_limit, state.config.max_limit)?,
    };
    let timeproperty = match p.get("timeproperty") {
        None | Some("observedAt") => TimeProperty::ObservedAt,
        Some("createdAt") => TimeProperty::CreatedAt,
        Some("modifiedAt") => TimeProperty::ModifiedAt,
        Some(o) => {
            return Err(ApiError::bad_data(format!(
                "timeproperty must be observedAt, createdAt or modifiedAt, not {o:?}"
            )))
        }
    };
    let last_n = p.usize("lastN")?;
    if last_n == Some(0) {
        return Err(ApiError::bad_data("lastN must be at least 1"));
    }
    let attrs = p
        .list("attrs")
        .or_else(|| p.list("pick"))
        .map(|a| a.iter().map(|n| ctx.expand(n)).collect());
    Ok(TemporalQuery {
        entities,
        timerel: timerel(p)?,
        timeproperty,
        attrs,
        last_n,
        instance_limit: DEFAULT_INSTANCE_LIMIT,
    })
}

fn aggregation(p: &Params) -> ApiResult<Option<Aggregation>> {
    let wanted =
        p.options().contains("aggregatedValues") || p.get("format") == Some("aggregatedValues");
    let methods = p.list("aggrMethods");
    match (wanted, methods) {
        (false, None) => Ok(None),
        (true, None) => Err(ApiError::bad_data("aggregatedValues needs aggrMethods")),
        (_, Some(list)) => {
            let methods = list
                .iter()
                .map(|m| {
                    AggrMethod::parse(m).ok_or_else(|| {
                        ApiError::bad_data(format!(
                            "unknown aggregation method {m:?}; use totalCount, distinctCount, sum, avg, min, max, stddev, sumsq"
                        ))
                    })
                })
                .collect::<ApiResult<Vec<_>>>()?;
            let period = p
                .get("aggrPeriodDuration")
                .map(Duration::parse)
                .transpose()?;
            Ok(Some(Aggregation { methods, period }))
        }
    }
}

fn render_temporal(
    e: &TemporalEntity,
    ctx: &Context,
    o: &RenderOptions,
    simplified: bool,
) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(e.id.clone()));
    m.insert("type".into(), render_types(&e.types, ctx));
    if !e.scopes.is_empty() {
        m.insert("scope".into(), json!(e.scopes));
    }
    for (name, instances) in &e.attrs {
        let key = ctx.compact(name);
        if simplified {
            // one object per datasetId with values as [value, time] pairs
            let mut groups: BTreeMap<Option<String>, Vec<&Attribute>> = BTreeMap::new();
            for a in instances {
                groups.entry(a.dataset_id.clone()).or_default().push(a);
            }
            let rendered: Vec<Value> = groups
                .into_iter()
                .map(|(ds, list)| {
                    let kind = list[0].kind;
                    let (member, ty) = match kind {
                        AttrKind::Relationship => ("objects", "Relationship"),
                        AttrKind::LanguageProperty => ("languageMaps", "LanguageProperty"),
                        AttrKind::GeoProperty => ("values", "GeoProperty"),
                        AttrKind::VocabProperty => ("vocabs", "VocabProperty"),
                        AttrKind::JsonProperty => ("jsons", "JsonProperty"),
                        AttrKind::ListProperty => ("valueLists", "ListProperty"),
                        AttrKind::ListRelationship => ("objectLists", "ListRelationship"),
                        AttrKind::Property => ("values", "Property"),
                    };
                    let values: Vec<Value> = list
                        .iter()
                        .map(|a| {
                            let t = a
                                .observed_at
                                .or(a.modified_at)
                                .map(|t| format_datetime(&t))
                                .unwrap_or_default();
                            json!([a.value, t])
                        })
                        .collect();
                    let mut obj = Map::new();
                    obj.insert("type".into(), json!(ty));
                    obj.insert(member.into(), Value::Array(values));
                    if let Some(d) = ds {
                        obj.insert("datasetId".into(), json!(d));
                    }
                    Value::Object(obj)
                })
                .collect();
            m.insert(
                key,
                if rendered.len() == 1 {
                    rendered.into_iter().next().unwrap_or(Value::Null)
                } else {
                    Value::Array(rendered)
                },
            );
        } else {
            let opts = RenderOptions {
                format: Format::Normalized,
                ..o.clone()
            };
            m.insert(
                key,
                Value::Array(
                    instances
                        .iter()
                        .map(|a| render_attribute(a, ctx, &opts))
                        .collect(),
                ),
            );
        }
    }
    Value::Object(m)
}

fn render_aggregated(e: &AggregatedEntity, ctx: &Context) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(e.id.clone()));
    m.insert("type".into(), render_types(&e.types, ctx));
    for (name, methods) in &e.attrs {
        let mut obj = Map::new();
        obj.insert("type".into(), json!("Property"));
        for (method, periods) in methods {
            obj.insert(
                method.name().into(),
                Value::Array(
                    periods
                        .iter()
                        .map(|p| {
                            json!([p.value, format_datetime(&p.start), format_datetime(&p.end)])
                        })
                        .collect(),
                ),
            );
        }
        m.insert(ctx.compact(name), Value::Object(obj));
    }
    Value::Object(m)
}

/// Takes out of temporal results (histories, or aggregates with `aggregates`) what the caller may not see, and logs
/// the read.
async fn release<T, V>(
    g: &Guard,
    results: &mut [T],
    parts: impl for<'a> Fn(&'a mut T) -> (&'a String, &'a mut BTreeMap<String, V>),
    aggregates: bool,
    operation: &str,
) -> ApiResult<()> {
    let ids: Vec<String> = results.iter_mut().map(|e| parts(e).0.clone()).collect();
    let datasets = g.datasets_of(ids.clone()).await?;
    let of = |id: &String| datasets.get(id).and_then(|d| d.as_deref());
    for e in results.iter_mut() {
        let (id, attrs) = parts(e);
        g.redact_map(of(id), attrs, aggregates);
    }
    g.log(ids.iter().map(of), operation);
    Ok(())
}

async fn run_query(
    state: &SharedState,
    g: &Guard,
    p: &Params,
    rc: &RequestContext,
    single: Option<&str>,
) -> ApiResult<(Value, usize)> {
    let mut tq = temporal_query(p, &rc.ctx, state, single)?;
    g.restrict(&mut tq.entities);
    let o = params::render_options(p, &rc.ctx)?;
    let simplified =
        p.options().contains("temporalValues") || p.get("format") == Some("temporalValues");
    if let Some(a) = aggregation(p)? {
        let mut r = state.store.temporal_aggregate(&tq, &a).await?;
        release(
            g,
            &mut r,
            |e| (&e.id, &mut e.attrs),
            true,
            "temporal.aggregate",
        )
        .await?;
        let n = r.len();
        return Ok((
            Value::Array(r.iter().map(|e| render_aggregated(e, &rc.ctx)).collect()),
            n,
        ));
    }
    let mut r = state.store.temporal_query(&tq).await?;
    release(
        g,
        &mut r,
        |e| (&e.id, &mut e.attrs),
        false,
        "temporal.query",
    )
    .await?;
    let n = r.len();
    Ok((
        Value::Array(
            r.iter()
                .map(|e| render_temporal(e, &rc.ctx, &o, simplified))
                .collect(),
        ),
        n,
    ))
}

fn format_params(p: &Params) -> ApiResult<()> {
    if let Some(f) = p.get("format") {
        if !matches!(
            f,
            "normalized" | "temporalValues" | "aggregatedValues" | "concise" | "simplified"
        ) {
            return Err(ApiError::bad_data(format!(
                "format {f:?} is not available for temporal queries"
            )));
        }
    }
    Ok(())
}

async fn query(
    State(state): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let raw = strip_temporal_format(raw);
    let p = Params::parse(raw.as_deref(), TEMPORAL_PARAMS)?;
    format_params(&p)?;
    let accept = ld::accept(&headers, false)?;
    let rc = ld::request_context(&state, &headers, None, None).await?;
    let (body, _) = run_query(&state, &g, &p, &rc, None).await?;
    Ok(json_response(StatusCode::OK, body, accept, &rc))
}

/// `format=temporalValues|aggregatedValues` are temporal-only spellings of options: keep them out of entity
/// rendering's `format` check.
fn strip_temporal_format(raw: Option<String>) -> Option<String> {
    raw.map(|r| {
        r.split('&')
            .map(|kv| match kv {
                "format=temporalValues" => "options=temporalValues".to_string(),
                "format=aggregatedValues" => "options=aggregatedValues".to_string(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&")
    })
}

async fn retrieve(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let raw = strip_temporal_format(raw);
    let p = Params::parse(raw.as_deref(), TEMPORAL_PARAMS)?;
    format_params(&p)?;
    check_id(&id)?;
    let accept = ld::accept(&headers, false)?;
    let rc = ld::request_context(&state, &headers, None, None).await?;
    let (body, n) = run_query(&state, &g, &p, &rc, Some(&id)).await?;
    if n == 0 {
        return Err(ApiError::not_found(format!(
            "temporal entity {id} does not exist"
        )));
    }
    let one = match body {
        Value::Array(mut a) => a.remove(0),
        other => other,
    };
    Ok(json_response(StatusCode::OK, one, accept, &rc))
}

async fn query_post(
    State(state): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let url = Params::parse(
        raw.as_deref(),
        &[
            "limit", "offset", "count", "options", "format", "lastN", "local",
        ],
    )?;
    let accept = ld::accept(&headers, false)?;
    let (v, rc) = read_body(&state, &headers, &body, false).await?;
    let m = v
        .as_object()
        .ok_or_else(|| ApiError::bad_data("the query must be a JSON object"))?;
    if m.get("type").and_then(Value::as_str) != Some("Query") {
        return Err(ApiError::bad_data(
            "the query object needs \"type\": \"Query\"",
        ));
    }
    // rebuild an equivalent parameter list from the body
    let mut kv: Vec<(String, String)> = Vec::new();
    for k in ["limit", "offset", "count", "options", "format", "lastN"] {
        if let Some(v) = url.get(k) {
            kv.push((k.into(), v.into()));
        }
    }
    if let Some(ents) = m.get("entities").and_then(Value::as_array) {
        let ids: Vec<&str> = ents
            .iter()
            .filter_map(|e| e.get("id").and_then(Value::as_str))
            .collect();
        let types: Vec<&str> = ents
            .iter()
            .filter_map(|e| e.get("type").and_then(Value::as_str))
            .collect();
        if !ids.is_empty() {
            kv.push(("id".into(), ids.join(",")));
        }
        if !types.is_empty() {
            kv.push(("type".into(), types.join(",")));
        }
    }
    if let Some(a) = m.get("attrs").and_then(Value::as_array) {
        kv.push((
            "attrs".into(),
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
        ));
    }
    for k in ["q", "scopeQ"] {
        if let Some(s) = m.get(k).and_then(Value::as_str) {
            kv.push((k.into(), s.into()));
        }
    }
    if let Some(t) = m.get("temporalQ") {
        for k in ["timerel", "timeAt", "endTimeAt", "timeproperty", "lastN"] {
            if let Some(s) = t.get(k) {
                kv.push((
                    k.into(),
                    s.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| s.to_string()),
                ));
            }
        }
    }
    if let Some(g) = m.get("geoQ") {
        for k in ["georel", "geometry", "geoproperty"] {
            if let Some(s) = g.get(k).and_then(Value::as_str) {
                kv.push((k.into(), s.into()));
            }
        }
        if let Some(c) = g.get("coordinates") {
            kv.push((
                "coordinates".into(),
                c.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| c.to_string()),
            ));
        }
    }
    let raw2 = kv
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let p = Params::parse(Some(&raw2), TEMPORAL_PARAMS)?;
    let (body, _) = run_query(&state, &g, &p, &rc, None).await?;
    Ok(json_response(StatusCode::OK, body, accept, &rc))
}

async fn delete_entity(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<StatusCode> {
    Params::parse(raw.as_deref(), &["local"])?;
    check_id(&id)?;
    g.check_history_write(&id).await?;
    state.store.temporal_delete(&id, None, None, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_attr(
    State(state): State<SharedState>,
    g: Guard,
    Path((id, attr)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<StatusCode> {
    let p = Params::parse(raw.as_deref(), &["datasetId", "deleteAll", "local"])?;
    check_id(&id)?;
    let rc = ld::request_context(&state, &headers, None, None).await?;
    let name = rc.ctx.expand(&attr);
    let ds = if p.bool("deleteAll")?.unwrap_or(false) {
        None
    } else {
        p.get("datasetId")
    };
    g.check_history_write(&id).await?;
    state
        .store
        .temporal_delete(&id, Some(&name), ds, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn modify_instance(
    State(state): State<SharedState>,
    g: Guard,
    Path((id, attr, instance)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<StatusCode> {
    Params::parse(raw.as_deref(), &["local"])?;
    check_id(&id)?;
    let (v, rc) = read_body(&state, &headers, &body, false).await?;
    let name = rc.ctx.expand(&attr);
    // the body is {attr: instance} or the instance itself
    let inst = v.get(&attr).cloned().unwrap_or(v);
    let inst = match inst {
        Value::Array(mut a) if a.len() == 1 => a.remove(0),
        other => other,
    };
    let prov = provenance(&headers, &g.principal, "temporal");
    let mut parsed = parse_attribute(&attr, &inst, &rc.ctx, Utc::now(), &prov)?;
    if parsed.len() != 1 {
        return Err(ApiError::new(
            ErrorKind::BadRequestData,
            "exactly one instance expected",
        ));
    }
    g.check_history_write(&id).await?;
    state
        .store
        .temporal_modify_instance(&id, &name, &instance, parsed.remove(0))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_instance(
    State(state): State<SharedState>,
    g: Guard,
    Path((id, attr, instance)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<StatusCode> {
    Params::parse(raw.as_deref(), &["local"])?;
    check_id(&id)?;
    let rc = ld::request_context(&state, &headers, None, None).await?;
    let name = rc.ctx.expand(&attr);
    g.check_history_write(&id).await?;
    state
        .store
        .temporal_delete(&id, Some(&name), None, Some(&instance))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
