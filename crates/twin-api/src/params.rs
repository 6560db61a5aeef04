//! URL query parameters of the NGSI-LD API: strict parsing (unknown or repeated parameters are errors, `+` is a
//! space as in form encoding except in scope queries) and the shared options (`options`, `format`, `limit`, `attrs`, `pick`...).

use std::collections::{BTreeMap, HashSet};

use percent_encoding::percent_decode_str;
use twin_model::context::Context;
use twin_model::geoquery::GeoQuery;
use twin_model::ngsi::{Format, RenderOptions};
use twin_model::query::{parse_q, parse_scope_q, parse_types};
use twin_store::EntityQuery;

use crate::error::{ApiError, ApiResult};

/// Decoded query parameters.
#[derive(Debug, Default, Clone)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl Params {
    /// Parses a raw query string; `allowed` are the parameters this operation understands.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> ApiResult<Params> {
        let mut map = BTreeMap::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode_str(k)
                .decode_utf8()
                .map_err(|_| ApiError::bad_data("a query parameter name is not valid UTF-8"))?
                .to_string();
            // form encoding (what most HTTP clients send) writes a space as `+`; scope queries use `+` as their
            // one-level wildcard, so there it stays a plus sign (send %2B for a literal plus elsewhere)
            let v = if k == "scopeQ" {
                v.to_string()
            } else {
                v.replace('+', " ")
            };
            let v = percent_decode_str(&v)
                .decode_utf8()
                .map_err(|_| {
                    ApiError::bad_data(format!("the value of parameter {k} is not valid UTF-8"))
                })?
                .to_string();
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad_data(format!(
                    "unknown query parameter {k:?}; this operation accepts: {}",
                    allowed.join(", ")
                )));
            }
            if map.insert(k.clone(), v).is_some() {
                return Err(ApiError::bad_data(format!(
                    "query parameter {k} given more than once"
                )));
            }
        }
        Ok(Params { map })
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(String::as_str)
    }

    pub fn has(&self, k: &str) -> bool {
        self.map.contains_key(k)
    }

    /// A comma separated list parameter.
    pub fn list(&self, k: &str) -> Option<Vec<String>> {
        self.get(k).map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
    }

    pub fn usize(&self, k: &str) -> ApiResult<Option<usize>> {
        self.get(k)
            .map(|v| {
                v.parse::<usize>().map_err(|_| {
                    ApiError::bad_data(format!("{k} must be a non-negative integer, got {v:?}"))
                })
            })
            .transpose()
    }

    /// A number parameter (finite or not: the caller checks its range).
    pub fn f64(&self, k: &str) -> ApiResult<Option<f64>> {
        self.get(k)
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|_| ApiError::bad_data(format!("{k} must be a number, not {v:?}")))
            })
            .transpose()
    }

    pub fn bool(&self, k: &str) -> ApiResult<Option<bool>> {
        self.get(k)
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ApiError::bad_data(format!(
                    "{k} must be true or false, got {v:?}"
                ))),
            })
            .transpose()
    }

    /// The `options` list.
    pub fn options(&self) -> HashSet<String> {
        self.list("options")
            .unwrap_or_default()
            .into_iter()
            .collect()
    }
}

/// The query parameters of entity queries.
pub const QUERY_PARAMS: &[&str] = &[
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
    "geometryProperty",
    "lang",
    "limit",
    "offset",
    "count",
    "options",
    "format",
    "csf",
    "local",
    "datasetId",
    "collation",
    "entityMap",
    "join",
    "joinLevel",
    "containedBy",
    "expandValues",
];

/// Builds the render options from `options`, `format`, `lang`, `attrs`, `pick`, `omit`.
pub fn render_options(p: &Params, ctx: &Context) -> ApiResult<RenderOptions> {
    let opts = p.options();
    for o in &opts {
        if !matches!(
            o.as_str(),
            "keyValues"
                | "concise"
                | "normalized"
                | "sysAttrs"
                | "noOverwrite"
                | "temporalValues"
                | "provenance"
                | "update"
                | "replace"
                | "audit"
                | "aggregatedValues"
                | "count"
                | "simplified"
        ) {
            return Err(ApiError::bad_data(format!("unknown option {o:?}")));
        }
    }
    let mut format = if opts.contains("keyValues") || opts.contains("simplified") {
        Format::KeyValues
    } else if opts.contains("concise") {
        Format::Concise
    } else {
        Format::Normalized
    };
    if let Some(f) = p.get("format") {
        format = match f {
            "keyValues" | "simplified" => Format::KeyValues,
            "concise" => Format::Concise,
            "normalized" => Format::Normalized,
            other => {
                return Err(ApiError::bad_data(format!(
                    "format must be normalized, concise or keyValues, not {other:?}"
                )))
            }
        };
    }
    if p.has("pick") && p.has("attrs") {
        return Err(ApiError::bad_data("pick and attrs cannot be combined"));
    }
    let mut o = RenderOptions {
        format,
        sys_attrs: opts.contains("sysAttrs"),
        lang: p.get("lang").map(String::from),
        provenance: opts.contains("provenance"),
        ..Default::default()
    };
    let pick = p.list("pick").or_else(|| p.list("attrs"));
    if let Some(list) = pick {
        let mut keep = HashSet::new();
        let mut id = false;
        let mut ty = false;
        for a in list {
            match a.as_str() {
                "id" => id = true,
                "type" => ty = true,
                _ => {
                    twin_model::ngsi::check_name(&a, "attribute")?;
                    keep.insert(ctx.expand(&a));
                }
            }
        }
        if p.has("pick") {
            o.omit_id = !id;
            o.omit_type = !ty;
        }
        o.attrs = Some(keep);
    }
    if let Some(list) = p.list("omit") {
        let mut drop = HashSet::new();
        for a in list {
            match a.as_str() {
                "id" => o.omit_id = true,
                "type" => o.omit_type = true,
                _ => {
                    drop.insert(ctx.expand(&a));
                }
            }
        }
        if !drop.is_empty() {
            o.omit = Some(drop);
        }
    }
    Ok(o)
}

/// Builds the entity query of `GET /entities` (and of temporal queries) from URL parameters.
pub fn entity_query(
    p: &Params,
    ctx: &Context,
    default_limit: usize,
    max_limit: usize,
) -> ApiResult<EntityQuery> {
    let mut q = EntityQuery::default();
    if let Some(ids) = p.list("id") {
        for i in &ids {
            if !twin_model::ngsi::is_uri(i) {
                return Err(ApiError::bad_data(format!("id {i:?} is not a URI")));
            }
        }
        q.ids = Some(ids);
    }
    if let Some(pat) = p.get("idPattern") {
        q.id_pattern = Some(twin_model::query::compile_regex(pat).map_err(|e| {
            ApiError::bad_data(format!("idPattern is not a valid regular expression: {e}"))
        })?);
    }
    if let Some(t) = p.get("type") {
        let mut te = parse_types(t)?;
        te.expand_names(&|n| ctx.expand(n));
        q.types = Some(te);
    }
    if let Some(s) = p.get("q") {
        let mut qq = parse_q(s)?;
        qq.expand_names(&|n| ctx.expand(n));
        q.q = Some(qq);
    }
    if let Some(s) = p.get("scopeQ") {
        q.scope_q = Some(parse_scope_q(s)?);
    }
    if p.has("georel") || p.has("geometry") || p.has("coordinates") {
        let (Some(rel), Some(geom), Some(coords)) =
            (p.get("georel"), p.get("geometry"), p.get("coordinates"))
        else {
            return Err(ApiError::bad_data(
                "a geo-query needs georel, geometry and coordinates together",
            ));
        };
        let mut g = GeoQuery::parse(rel, geom, coords, p.get("geoproperty"))?;
        g.expand_names(&|n| ctx.expand(n));
        q.geo = Some(g);
    }
    if let Some(attrs) = p.list("attrs").or_else(|| p.list("pick")) {
        let names: Vec<String> = attrs
            .iter()
            .filter(|a| !matches!(a.as_str(), "id" | "type"))
            .map(|a| ctx.expand(a))
            .collect();
        if !names.is_empty() && p.has("attrs") {
            q.attrs = Some(names);
        }
    }
    let limit = p.usize("limit")?.unwrap_or(default_limit);
    if limit > max_limit {
        return Err(ApiError::new(
            twin_model::ErrorKind::TooManyResults,
            format!("limit {limit} is above the maximum page size {max_limit}"),
        ));
    }
    q.limit = limit;
    q.offset = p.usize("offset")?.unwrap_or(0);
    q.count = p.bool("count")?.unwrap_or(false);
    if q.limit == 0 && !q.count {
        return Err(ApiError::bad_data(
            "limit=0 is only allowed together with count=true",
        ));
    }
    if q.ids.is_none()
        && q.types.is_none()
        && q.attrs.is_none()
        && q.q.is_none()
        && q.geo.is_none()
        && q.id_pattern.is_none()
        && q.scope_q.is_none()
    {
        return Err(ApiError::bad_data(
            "an entity query needs at least one of type, id, idPattern, attrs, q, scopeQ or a geo-query",
        ));
    }
    Ok(q)
}
