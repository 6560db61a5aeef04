//! `/types` and `/attributes`: what kinds of entities and attributes the broker holds, with counts and details
//! (ETSI GS CIM 009 clause 5.7.5–5.7.10).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::guard::Guard;
use crate::ld;
use crate::params::Params;
use crate::{json_response, SharedState};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/types", get(list_types))
        .route("/types/{ty}", get(type_info))
        .route("/attributes", get(list_attributes))
        .route("/attributes/{attr}", get(attribute_info))
}

fn list_id(kind: &str) -> String {
    format!("urn:ngsi-ld:{kind}:{}", uuid::Uuid::new_v4())
}

async fn list_types(
    State(state): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &["details", "local"])?;
    let accept = ld::accept(&headers, false)?;
    let rc = ld::request_context(&state, &headers, None, None).await?;
    let types = g.types().await?;
    let body = if p.bool("details")?.unwrap_or(false) {
        Value::Array(
            types
                .iter()
                .map(|t| {
                    json!({
                        "id": t.type_name,
                        "type": "EntityType",
                        "typeName": rc.ctx.compact(&t.type_name),
                        "attributeNames": t.attributes.keys().map(|a| rc.ctx.compact(a)).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    } else {
        json!({
            "id": list_id("EntityTypeList"),
            "type": "EntityTypeList",
            "typeList": types.iter().map(|t| rc.ctx.compact(&t.type_name)).collect::<Vec<_>>(),
        })
    };
    Ok(json_response(StatusCode::OK, body, accept, &rc))
}

async fn type_info(
    State(state): State<SharedState>,
    g: Guard,
    Path(ty): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &["local"])?;
    let accept = ld::accept(&headers, false)?;
    let rc = ld::request_context(&state, &headers, None, None).await?;
    let expanded = rc.ctx.expand(&ty);
    let types = g.types().await?;
    let t = types
        .into_iter()
        .find(|t| t.type_name == expanded)
        .ok_or_else(|| {
            ApiError::not_found(format!("no entity of type {ty} ({expanded}) exists"))
        })?;
    let body = json!({
        "id": t.type_name,
        "type": "EntityTypeInfo",
        "typeName": rc.ctx.compact(&t.type_name),
        "entityCount": t.entity_count,
        "attributeDetails": t.attributes.iter().map(|(a, kinds)| json!({
            "id": a,
            "type": "Attribute",
            "attributeName": rc.ctx.compact(a),
            "attributeTypes": kinds,
        })).collect::<Vec<_>>(),
    });
    Ok(json_response(StatusCode::OK, body, accept, &rc))
}

async fn list_attributes(
    State(state): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &["details", "local"])?;
    let accept = ld::accept(&headers, false)?;
    let rc = ld::request_context(&state, &headers, None, None).await?;
    let attrs = g.attributes().await?;
    let body = if p.bool("details")?.unwrap_or(false) {
        Value::Array(attrs.iter().map(|a| attribute_json(a, &rc)).collect())
    } else {
        json!({
            "id": list_id("AttributeList"),
            "type": "AttributeList",
            "attributeList": attrs.iter().map(|a| rc.ctx.compact(&a.name)).collect::<Vec<_>>(),
        })
    };
    Ok(json_response(StatusCode::OK, body, accept, &rc))
}

fn attribute_json(a: &twin_store::AttributeInfo, rc: &ld::RequestContext) -> Value {
    json!({
        "id": a.name,
        "type": "Attribute",
        "attributeName": rc.ctx.compact(&a.name),
        "attributeCount": a.attribute_count,
        "attributeTypes": a.kinds,
        "typeNames": a.type_names.iter().map(|t| rc.ctx.compact(t)).collect::<Vec<_>>(),
    })
}

async fn attribute_info(
    State(state): State<SharedState>,
    g: Guard,
    Path(attr): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &["local"])?;
    let accept = ld::accept(&headers, false)?;
    let rc = ld::request_context(&state, &headers, None, None).await?;
    let expanded = rc.ctx.expand(&attr);
    let attrs = g.attributes().await?;
    let a = attrs.iter().find(|a| a.name == expanded).ok_or_else(|| {
        ApiError::not_found(format!("no entity has an attribute {attr} ({expanded})"))
    })?;
    Ok(json_response(
        StatusCode::OK,
        attribute_json(a, &rc),
        accept,
        &rc,
    ))
}
