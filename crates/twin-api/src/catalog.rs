//! `/catalog`: the twin's datasets as a DCAT-AP 3 catalogue, in JSON-LD and Turtle, so that national and European
//! data portals can harvest what the twin holds: owner, licence, access rights, update frequency, extent, services.
//!
//! One RDF graph (oxrdf) is built per request and written either as Turtle (oxttl) or as JSON-LD with a prefix
//! context (one node object per subject, written here: the graph has no blank nodes, so the mapping is direct and
//! both forms carry exactly the same triples, which the tests check by parsing each back). Only datasets the
//! caller may read are listed, so the catalogue never reveals a private dataset, its types or its size.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use oxrdf::vocab::{rdf, xsd};
use oxrdf::{Literal, NamedNode, NamedOrBlankNode, Term, Triple};
use serde_json::{json, Map, Value};
use twin_model::dataset::Access;
use twin_model::{Context, Dataset, ErrorKind};
use twin_store::EntityQuery;

use crate::error::{ApiError, ApiResult};
use crate::guard::Guard;
use crate::params::Params;
use crate::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/catalog", get(catalog))
        .route("/catalog.ttl", get(turtle))
        .route("/catalog.jsonld", get(jsonld))
}

/// The prefixes both forms use (the JSON-LD context and the Turtle `@prefix`es).
pub const PREFIXES: [(&str, &str); 10] = [
    ("dcat", "http://www.w3.org/ns/dcat#"),
    ("dct", "http://purl.org/dc/terms/"),
    ("foaf", "http://xmlns.com/foaf/0.1/"),
    ("vcard", "http://www.w3.org/2006/vcard/ns#"),
    ("locn", "http://www.w3.org/ns/locn#"),
    ("gsp", "http://www.opengis.net/ont/geosparql#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("adms", "http://www.w3.org/ns/adms#"),
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
];

const EU: &str = "http://publications.europa.eu/resource/authority/";
const IANA: &str = "http://www.iana.org/assignments/media-types/";

/// What the store says of one dataset's content, for its catalogue record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetFacts {
    /// Its entities.
    pub entities: u64,
    /// Its entity types (expanded).
    pub types: Vec<String>,
    /// West, south, east, north (WGS84) around its geometries.
    pub bbox: Option<[f64; 4]>,
    /// The first and last time its values were observed.
    pub period: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// When it last changed.
    pub modified: Option<DateTime<Utc>>,
}

/// The catalogue as a whole.
pub struct CatalogInput<'a> {
    /// The server's public URL, without a trailing slash.
    pub base: &'a str,
    pub title: &'a str,
    pub publisher: &'a str,
    pub datasets: Vec<(&'a Dataset, DatasetFacts)>,
    /// The results of published consultations (open data: CSV and GeoJSON downloads).
    pub consultations: Vec<crate::consultations::results::ResultsEntry>,
}

struct Graph(Vec<Triple>);

impl Graph {
    fn add(&mut self, s: &NamedNode, p: &str, o: impl Into<Term>) {
        self.0.push(Triple::new(
            NamedOrBlankNode::NamedNode(s.clone()),
            NamedNode::new_unchecked(p),
            o.into(),
        ));
    }
    fn add_iri(&mut self, s: &NamedNode, p: &str, o: &str) {
        if let Ok(o) = NamedNode::new(o) {
            self.add(s, p, o);
        }
    }
    fn add_text(&mut self, s: &NamedNode, p: &str, text: &str) {
        self.add(
            s,
            p,
            Literal::new_language_tagged_literal_unchecked(text, "en"),
        );
    }
    fn add_time(&mut self, s: &NamedNode, p: &str, t: DateTime<Utc>) {
        self.add(
            s,
            p,
            Literal::new_typed_literal(
                t.to_rfc3339_opts(SecondsFormat::Secs, true),
                xsd::DATE_TIME,
            ),
        );
    }
    fn typed(&mut self, s: &NamedNode, class: &str) {
        self.add(s, rdf::TYPE.as_str(), NamedNode::new_unchecked(class));
    }
}

fn iri(s: String) -> NamedNode {
    NamedNode::new(&s).unwrap_or_else(|_| NamedNode::new_unchecked(crate::path_segment(&s)))
}

const DCAT: &str = "http://www.w3.org/ns/dcat#";
const DCT: &str = "http://purl.org/dc/terms/";
const FOAF: &str = "http://xmlns.com/foaf/0.1/";
const VCARD: &str = "http://www.w3.org/2006/vcard/ns#";

fn dcat(t: &str) -> String {
    format!("{DCAT}{t}")
}
fn dct(t: &str) -> String {
    format!("{DCT}{t}")
}

/// The licence's IRI: an SPDX identifier becomes its SPDX page, a URL stays.
fn licence_iri(licence: &str) -> Option<String> {
    let l = licence.trim();
    if l.starts_with("http://") || l.starts_with("https://") {
        return Some(l.to_string());
    }
    let spdx = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '+'))
    };
    spdx(l).then(|| format!("http://spdx.org/licenses/{l}"))
}

/// DCAT-AP access rights from who may read the data.
fn access_right(read: &Access) -> &'static str {
    match read {
        Access::Public => "PUBLIC",
        Access::Registered | Access::Groups(_) => "RESTRICTED",
        Access::Private => "NON_PUBLIC",
    }
}

/// The catalogue's triples.
pub fn graph(c: &CatalogInput) -> Vec<Triple> {
    let mut g = Graph(Vec::new());
    let base = c.base;
    let cat = iri(format!("{base}/catalog"));
    g.typed(&cat, &dcat("Catalog"));
    g.add_text(&cat, &dct("title"), c.title);
    g.add_text(
        &cat,
        &dct("description"),
        &format!(
            "The datasets of {}: city data, live sensor data and simulation results, with their owners, licences \
             and access rights",
            c.title
        ),
    );
    g.add_iri(&cat, &format!("{FOAF}homepage"), &format!("{base}/"));
    let publisher = iri(format!("{base}/catalog#publisher"));
    g.add(&cat, &dct("publisher"), publisher.clone());
    g.typed(&publisher, &format!("{FOAF}Agent"));
    g.add_text(&publisher, &format!("{FOAF}name"), c.publisher);
    if let Some(m) = c.datasets.iter().filter_map(|(_, f)| f.modified).max() {
        g.add_time(&cat, &dct("modified"), m);
    }

    // the services every dataset is served through
    let ngsi = iri(format!("{base}/ngsi-ld/v1"));
    let ogc = iri(format!("{base}/ogc"));
    for (svc, title, conforms, description) in [
        (
            &ngsi,
            "NGSI-LD API",
            "https://www.etsi.org/deliver/etsi_gs/CIM/001_099/009/",
            format!("{base}/openapi.json"),
        ),
        (
            &ogc,
            "OGC API - Features",
            "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
            format!("{base}/ogc/api"),
        ),
    ] {
        g.typed(svc, &dcat("DataService"));
        g.add_text(svc, &dct("title"), title);
        g.add(svc, &dcat("endpointURL"), svc.clone());
        g.add_iri(svc, &dcat("endpointDescription"), &description);
        g.add_iri(svc, &dct("conformsTo"), conforms);
        g.add(&cat, &dcat("service"), svc.clone());
    }

    let ctx = Context::core();
    for (d, facts) in &c.datasets {
        let ds = iri(format!(
            "{base}/api/datasets/{}",
            crate::path_segment(&d.id)
        ));
        g.add(&cat, &dcat("dataset"), ds.clone());
        g.add(&ngsi, &dcat("servesDataset"), ds.clone());
        g.typed(&ds, &dcat("Dataset"));
        g.add_text(&ds, &dct("title"), &d.title);
        g.add_text(
            &ds,
            &dct("description"),
            d.description.as_deref().unwrap_or(&d.title),
        );
        g.add(&ds, &dct("identifier"), Literal::new_simple_literal(&d.id));
        let owner = iri(format!(
            "{base}/catalog#agent-{}",
            crate::path_segment(&d.owner)
        ));
        g.add(&ds, &dct("publisher"), owner.clone());
        g.typed(&owner, &format!("{FOAF}Agent"));
        g.add(
            &owner,
            &format!("{FOAF}name"),
            Literal::new_simple_literal(&d.owner),
        );
        g.add_iri(
            &ds,
            &dct("accessRights"),
            &format!("{EU}access-right/{}", access_right(&d.read)),
        );
        for k in &d.catalog.keywords {
            g.add_text(&ds, &dcat("keyword"), k);
        }
        for t in &d.catalog.themes {
            g.add_iri(&ds, &dcat("theme"), &format!("{EU}data-theme/{t}"));
        }
        if let Some(f) = &d.catalog.update_frequency {
            g.add_iri(
                &ds,
                &dct("accrualPeriodicity"),
                &format!("{EU}frequency/{f}"),
            );
        }
        if let Some(p) = &d.catalog.landing_page {
            g.add_iri(&ds, &dcat("landingPage"), p);
        }
        if let Some(cp) = &d.catalog.contact_point {
            let kind = iri(format!("{}#contact", ds.as_str()));
            g.add(&ds, &dcat("contactPoint"), kind.clone());
            g.typed(&kind, &format!("{VCARD}Kind"));
            g.add(
                &kind,
                &format!("{VCARD}fn"),
                Literal::new_simple_literal(&d.owner),
            );
            if cp.contains('@') && !cp.starts_with("http") {
                g.add_iri(&kind, &format!("{VCARD}hasEmail"), &format!("mailto:{cp}"));
            } else {
                g.add_iri(&kind, &format!("{VCARD}hasURL"), cp);
            }
        }
        if let Some(t) = d.created_at {
            g.add_time(&ds, &dct("issued"), t);
        }
        if let Some(t) = facts.modified {
            g.add_time(&ds, &dct("modified"), t);
        }
        if let Some([w, s, e, n]) = facts.bbox {
            let loc = iri(format!("{}#extent", ds.as_str()));
            g.add(&ds, &dct("spatial"), loc.clone());
            g.typed(&loc, &dct("Location"));
            g.add(
                &loc,
                &dcat("bbox"),
                Literal::new_typed_literal(
                    format!("POLYGON(({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))"),
                    NamedNode::new_unchecked("http://www.opengis.net/ont/geosparql#wktLiteral"),
                ),
            );
        }
        if let Some((from, to)) = facts.period {
            let p = iri(format!("{}#period", ds.as_str()));
            g.add(&ds, &dct("temporal"), p.clone());
            g.typed(&p, &dct("PeriodOfTime"));
            g.add_time(&p, &dcat("startDate"), from);
            g.add_time(&p, &dcat("endDate"), to);
        }
        let licence = licence_iri(&d.licence).map(iri);
        if let Some(l) = &licence {
            g.typed(l, &dct("LicenseDocument"));
        }
        // distributions: the NGSI-LD API for all of it, OGC API Features per entity type
        let mut distributions: Vec<(NamedNode, String, String, &NamedNode, &str, String)> = vec![(
            iri(format!("{}#ngsi-ld", ds.as_str())),
            format!("{} (NGSI-LD)", d.title),
            format!("{base}/ngsi-ld/v1/entities"),
            &ngsi,
            "JSON_LD",
            "application/ld+json".into(),
        )];
        for t in &facts.types {
            let id = crate::ogc::collection_id(&ctx, t);
            distributions.push((
                iri(format!("{}#ogc-{id}", ds.as_str())),
                format!("{}: {id} features (GeoJSON)", d.title),
                format!("{base}/ogc/collections/{id}/items"),
                &ogc,
                "GEOJSON",
                "application/geo+json".into(),
            ));
        }
        for (dist, title, url, svc, format, media) in distributions {
            g.add(&ds, &dcat("distribution"), dist.clone());
            g.typed(&dist, &dcat("Distribution"));
            g.add_text(&dist, &dct("title"), &title);
            g.add_iri(&dist, &dcat("accessURL"), &url);
            g.add(&dist, &dcat("accessService"), svc.clone());
            g.add_iri(&dist, &dct("format"), &format!("{EU}file-type/{format}"));
            g.add_iri(&dist, &dcat("mediaType"), &format!("{IANA}{media}"));
            match &licence {
                Some(l) => g.add(&dist, &dct("license"), l.clone()),
                None => g.add(
                    &dist,
                    &dct("rights"),
                    Literal::new_simple_literal(&d.licence),
                ),
            }
            g.add_iri(
                &dist,
                &dct("accessRights"),
                &format!("{EU}access-right/{}", access_right(&d.read)),
            );
        }
    }

    // what participants said in consultations: public, without authors, CC0
    for r in &c.consultations {
        let ds = iri(format!(
            "{base}/api/consultations/{}/results",
            crate::path_segment(&r.id)
        ));
        g.add(&cat, &dcat("dataset"), ds.clone());
        g.typed(&ds, &dcat("Dataset"));
        g.add_text(&ds, &dct("title"), &r.title);
        g.add_text(&ds, &dct("description"), &r.description);
        g.add(
            &ds,
            &dct("identifier"),
            Literal::new_simple_literal(format!("consultation:{}", r.id)),
        );
        if let Some(p) = &r.publisher {
            let owner = iri(format!("{base}/catalog#agent-{}", crate::path_segment(p)));
            g.add(&ds, &dct("publisher"), owner.clone());
            g.typed(&owner, &format!("{FOAF}Agent"));
            g.add(
                &owner,
                &format!("{FOAF}name"),
                Literal::new_simple_literal(p),
            );
        }
        g.add_iri(
            &ds,
            &dct("accessRights"),
            &format!("{EU}access-right/PUBLIC"),
        );
        g.add_text(&ds, &dcat("keyword"), "public participation");
        g.add_text(&ds, &dcat("keyword"), "consultation");
        g.add_iri(&ds, &dcat("theme"), &format!("{EU}data-theme/GOVE"));
        g.add_iri(&ds, &dcat("landingPage"), &format!("{base}{}", r.page));
        g.add_time(&ds, &dct("issued"), r.issued);
        g.add_time(&ds, &dct("modified"), r.modified);
        if let Some([w, s, e, n]) = r.bbox {
            let loc = iri(format!("{}#extent", ds.as_str()));
            g.add(&ds, &dct("spatial"), loc.clone());
            g.typed(&loc, &dct("Location"));
            g.add(
                &loc,
                &dcat("bbox"),
                Literal::new_typed_literal(
                    format!("POLYGON(({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))"),
                    NamedNode::new_unchecked("http://www.opengis.net/ont/geosparql#wktLiteral"),
                ),
            );
        }
        let licence = licence_iri(crate::consultations::results::RESULTS_LICENCE).map(iri);
        for (frag, title, url, format, media) in [
            (
                "csv",
                "comments and proposals (CSV)",
                &r.csv,
                "CSV",
                "text/csv",
            ),
            (
                "geojson",
                "located comments and proposals (GeoJSON)",
                &r.geojson,
                "GEOJSON",
                "application/geo+json",
            ),
        ] {
            let dist = iri(format!("{}#{frag}", ds.as_str()));
            g.add(&ds, &dcat("distribution"), dist.clone());
            g.typed(&dist, &dcat("Distribution"));
            g.add_text(&dist, &dct("title"), &format!("{}: {title}", r.title));
            g.add_iri(&dist, &dcat("accessURL"), &format!("{base}{url}"));
            g.add_iri(&dist, &dcat("downloadURL"), &format!("{base}{url}"));
            g.add_iri(&dist, &dct("format"), &format!("{EU}file-type/{format}"));
            g.add_iri(&dist, &dcat("mediaType"), &format!("{IANA}{media}"));
            if let Some(l) = &licence {
                g.typed(l, &dct("LicenseDocument"));
                g.add(&dist, &dct("license"), l.clone());
            }
            g.add_iri(
                &dist,
                &dct("accessRights"),
                &format!("{EU}access-right/PUBLIC"),
            );
        }
    }
    g.0
}

/// The graph as Turtle, with the catalogue's prefixes.
pub fn to_turtle(triples: &[Triple]) -> Result<String, String> {
    let mut s = oxttl::TurtleSerializer::new();
    for (p, ns) in PREFIXES {
        s = s.with_prefix(p, ns).map_err(|e| e.to_string())?;
    }
    let mut w = s.for_writer(Vec::new());
    for t in triples {
        w.serialize_triple(t).map_err(|e| e.to_string())?;
    }
    let bytes = w.finish().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

fn compact(iri: &str) -> String {
    for (p, ns) in PREFIXES {
        if let Some(local) = iri.strip_prefix(ns) {
            if !local.is_empty() && local.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return format!("{p}:{local}");
            }
        }
    }
    iri.to_string()
}

/// The graph as JSON-LD: a prefix context and one node object per subject, in the order subjects first appear.
pub fn to_jsonld(triples: &[Triple]) -> Value {
    let mut order: Vec<String> = Vec::new();
    let mut nodes: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for t in triples {
        let NamedOrBlankNode::NamedNode(s) = &t.subject else {
            continue;
        };
        let node = nodes.entry(s.as_str().to_string()).or_insert_with(|| {
            order.push(s.as_str().to_string());
            let mut m = Map::new();
            m.insert("@id".into(), json!(s.as_str()));
            m
        });
        let (key, value) = if t.predicate == rdf::TYPE {
            let Term::NamedNode(o) = &t.object else {
                continue;
            };
            ("@type".to_string(), json!(compact(o.as_str())))
        } else {
            let v = match &t.object {
                Term::NamedNode(o) => json!({"@id": o.as_str()}),
                Term::Literal(l) => {
                    if let Some(lang) = l.language() {
                        json!({"@value": l.value(), "@language": lang})
                    } else if l.datatype() == xsd::STRING {
                        json!(l.value())
                    } else {
                        json!({"@value": l.value(), "@type": compact(l.datatype().as_str())})
                    }
                }
                _ => continue,
            };
            (compact(t.predicate.as_str()), v)
        };
        match node.get_mut(&key) {
            None => {
                node.insert(key, value);
            }
            Some(Value::Array(a)) => a.push(value),
            Some(old) => {
                let first = old.take();
                *old = json!([first, value]);
            }
        }
    }
    let context: Map<String, Value> = PREFIXES
        .iter()
        .map(|(p, ns)| (p.to_string(), json!(ns)))
        .collect();
    let graph: Vec<Value> = order
        .into_iter()
        .filter_map(|id| nodes.remove(&id).map(Value::Object))
        .collect();
    json!({"@context": context, "@graph": graph})
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Format {
    Turtle,
    JsonLd,
}

/// `?f=ttl|jsonld` first, then the Accept header; JSON-LD unless Turtle is preferred.
fn negotiate(raw: Option<&str>, headers: &HeaderMap) -> ApiResult<Format> {
    let p = Params::parse(raw, &["f"])?;
    if let Some(f) = p.get("f") {
        return match f {
            "ttl" | "turtle" => Ok(Format::Turtle),
            "jsonld" | "json" => Ok(Format::JsonLd),
            other => Err(ApiError::invalid(format!(
                "f={other}: the catalogue comes as ttl or jsonld"
            ))),
        };
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let rank = |m: &str| -> Option<f32> {
        accept.split(',').find_map(|part| {
            let mut it = part.split(';');
            let media = it.next()?.trim();
            if media != m {
                return None;
            }
            let q = it
                .find_map(|kv| kv.trim().strip_prefix("q="))
                .and_then(|q| q.parse().ok())
                .unwrap_or(1.0);
            Some(q)
        })
    };
    let ttl = rank("text/turtle").unwrap_or(0.0);
    let json = ["application/ld+json", "application/json", "*/*"]
        .iter()
        .filter_map(|m| rank(m))
        .fold(0.0f32, f32::max);
    Ok(if ttl > json && ttl > 0.0 {
        Format::Turtle
    } else {
        Format::JsonLd
    })
}

async fn catalog(
    State(state): State<SharedState>,
    g: Guard,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let f = negotiate(raw.as_deref(), &headers)?;
    respond(&state, &g, f).await
}

async fn turtle(State(state): State<SharedState>, g: Guard) -> ApiResult<Response> {
    respond(&state, &g, Format::Turtle).await
}

async fn jsonld(State(state): State<SharedState>, g: Guard) -> ApiResult<Response> {
    respond(&state, &g, Format::JsonLd).await
}

async fn respond(state: &SharedState, g: &Guard, f: Format) -> ApiResult<Response> {
    // the datasets whose data the caller may read (a portal harvesting anonymously sees the public ones)
    let datasets: Vec<Dataset> = state
        .store
        .list_datasets()
        .await?
        .into_iter()
        .filter(|d| g.scope().sees(Some(&d.id)))
        .collect();
    let mut entries = Vec::with_capacity(datasets.len());
    for d in &datasets {
        entries.push((d, facts(state, g, d).await?));
    }
    let base = state.config.public_url.trim_end_matches('/').to_string();
    let input = CatalogInput {
        base: &base,
        title: "urbantwin",
        publisher: "urbantwin",
        datasets: entries,
        consultations: crate::consultations::catalogue_entries(state).await?,
    };
    let triples = graph(&input);
    let vary = [(header::VARY, "Accept")];
    Ok(match f {
        Format::Turtle => {
            let body =
                to_turtle(&triples).map_err(|e| ApiError::new(ErrorKind::InternalError, e))?;
            (
                StatusCode::OK,
                vary,
                [(header::CONTENT_TYPE, "text/turtle; charset=utf-8")],
                body,
            )
                .into_response()
        }
        Format::JsonLd => (
            StatusCode::OK,
            vary,
            [(header::CONTENT_TYPE, "application/ld+json")],
            to_jsonld(&triples).to_string(),
        )
            .into_response(),
    })
}

/// What the store says of a dataset: how many entities, of which types, within which box (unless its locations
/// are hidden from the caller), when they last changed and what time their history spans.
async fn facts(state: &SharedState, g: &Guard, d: &Dataset) -> ApiResult<DatasetFacts> {
    let only = [d.id.clone()];
    let mut q = EntityQuery {
        datasets: Some(only.to_vec()),
        limit: 0,
        count: true,
        ..Default::default()
    };
    g.restrict(&mut q);
    let entities = state.store.query(&q).await?.count.unwrap_or(0);
    let types: Vec<String> = state
        .store
        .types(Some(&only))
        .await?
        .into_iter()
        .map(|t| t.type_name)
        .collect();
    let location = twin_model::entity::iri::LOCATION;
    let location_hidden = twin_model::policy::hidden_attributes(&g.principal, d)
        .iter()
        .any(|r| r.matches(location, "location"));
    let mut bbox: Option<[f64; 4]> = None;
    if !location_hidden {
        for t in &types {
            if let Some(b) = state.store.type_extent(t, Some(&only)).await? {
                bbox = Some(crate::guard::union_bbox(bbox, b));
            }
        }
    }
    let times = state.store.dataset_times(&d.id).await?;
    Ok(DatasetFacts {
        entities,
        types,
        bbox,
        period: times.observed,
        modified: times.modified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn sample() -> (Dataset, DatasetFacts) {
        let mut d: Dataset = serde_json::from_value(json!({
            "id": "urn:ngsi-ld:Dataset:air", "title": "Air quality", "owner": "City of Helsinki",
            "licence": "CC-BY-4.0", "keywords": ["air", "NO2"], "themes": ["ENVI"],
            "updateFrequency": "UPDATE_CONT", "contactPoint": "air@hel.example",
            "landingPage": "https://hel.example/air"
        }))
        .unwrap();
        d.created_at = Some("2026-01-02T03:04:05Z".parse().unwrap());
        let f = DatasetFacts {
            entities: 3,
            types: vec!["https://uri.etsi.org/ngsi-ld/default-context/AirQualityObserved".into()],
            bbox: Some([24.9, 60.1, 25.0, 60.2]),
            period: Some((
                "2026-01-01T00:00:00Z".parse().unwrap(),
                "2026-02-01T00:00:00Z".parse().unwrap(),
            )),
            modified: Some("2026-02-01T00:00:00Z".parse().unwrap()),
        };
        (d, f)
    }

    fn set(ts: impl IntoIterator<Item = Triple>) -> BTreeSet<String> {
        ts.into_iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn turtle_and_json_ld_carry_the_same_triples() {
        let (d, f) = sample();
        let input = CatalogInput {
            base: "https://twin.example",
            title: "Test twin",
            publisher: "Test city",
            datasets: vec![(&d, f)],
            consultations: vec![crate::consultations::results::ResultsEntry {
                id: "riverside".into(),
                title: "Consultation results: A calmer Riverside".into(),
                description: "What participants said".into(),
                publisher: Some("city".into()),
                issued: Utc::now(),
                modified: Utc::now(),
                bbox: Some([24.9, 60.1, 25.0, 60.2]),
                page: "/?consultation=riverside".into(),
                csv: "/api/consultations/riverside/results.csv".into(),
                geojson: "/api/consultations/riverside/results.geojson".into(),
            }],
        };
        let triples = graph(&input);
        let csv = triples.iter().any(|t| {
            t.predicate.as_str() == dcat("downloadURL")
                && t.object
                    .to_string()
                    .contains("/api/consultations/riverside/results.csv")
        });
        assert!(
            csv,
            "the consultation's results are a dataset with a CSV download"
        );
        let ttl = to_turtle(&triples).unwrap();
        let from_ttl: Vec<Triple> = oxttl::TurtleParser::new()
            .for_slice(ttl.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let ld = to_jsonld(&triples).to_string();
        let from_ld: Vec<Triple> = oxjsonld::JsonLdParser::new()
            .for_slice(ld.as_bytes())
            .map(|q| q.map(Triple::from))
            .collect::<Result<_, _>>()
            .unwrap();
        let want = set(triples.clone());
        assert_eq!(set(from_ttl), want, "{ttl}");
        assert_eq!(set(from_ld), want, "{ld}");
        // DCAT-AP's mandatory and the recommended properties this record has
        for needle in [
            "<https://twin.example/catalog> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://www.w3.org/ns/dcat#Catalog>",
            "<https://twin.example/catalog> <http://purl.org/dc/terms/publisher> <https://twin.example/catalog#publisher>",
            "<https://twin.example/api/datasets/urn%3Angsi%2Dld%3ADataset%3Aair> <http://purl.org/dc/terms/accrualPeriodicity> <http://publications.europa.eu/resource/authority/frequency/UPDATE_CONT>",
            "<http://www.w3.org/ns/dcat#theme> <http://publications.europa.eu/resource/authority/data-theme/ENVI>",
            "<http://purl.org/dc/terms/accessRights> <http://publications.europa.eu/resource/authority/access-right/PUBLIC>",
            "<http://purl.org/dc/terms/license> <http://spdx.org/licenses/CC-BY-4.0>",
            "<http://www.w3.org/2006/vcard/ns#hasEmail> <mailto:air@hel.example>",
            "\"POLYGON((24.9 60.1, 25 60.1, 25 60.2, 24.9 60.2, 24.9 60.1))\"^^<http://www.opengis.net/ont/geosparql#wktLiteral>",
            "<http://www.w3.org/ns/dcat#startDate> \"2026-01-01T00:00:00Z\"^^<http://www.w3.org/2001/XMLSchema#dateTime>",
            "<http://www.w3.org/ns/dcat#accessURL> <https://twin.example/ogc/collections/AirQualityObserved/items>",
        ] {
            assert!(want.iter().any(|t| t.contains(needle)), "no triple with {needle}");
        }
    }

    #[test]
    fn access_rights_follow_the_read_policy_and_licences_their_form() {
        assert_eq!(access_right(&Access::Public), "PUBLIC");
        assert_eq!(access_right(&Access::Registered), "RESTRICTED");
        assert_eq!(
            access_right(&Access::Groups(vec!["a".into()])),
            "RESTRICTED"
        );
        assert_eq!(access_right(&Access::Private), "NON_PUBLIC");
        assert_eq!(
            licence_iri("ODbL-1.0").as_deref(),
            Some("http://spdx.org/licenses/ODbL-1.0")
        );
        assert_eq!(
            licence_iri("https://example.org/l").as_deref(),
            Some("https://example.org/l")
        );
        assert_eq!(licence_iri("CC-BY-4.0 AND ODbL-1.0"), None);
    }

    #[test]
    fn the_format_follows_f_then_accept() {
        let h = |a: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, a.parse().unwrap());
            m
        };
        assert_eq!(negotiate(None, &HeaderMap::new()).unwrap(), Format::JsonLd);
        assert_eq!(negotiate(None, &h("text/turtle")).unwrap(), Format::Turtle);
        assert_eq!(
            negotiate(None, &h("application/ld+json, text/turtle;q=0.5")).unwrap(),
            Format::JsonLd
        );
        assert_eq!(
            negotiate(None, &h("text/turtle, */*;q=0.1")).unwrap(),
            Format::Turtle
        );
        assert_eq!(
            negotiate(Some("f=ttl"), &h("application/json")).unwrap(),
            Format::Turtle
        );
        assert!(negotiate(Some("f=xml"), &HeaderMap::new()).is_err());
    }
}
