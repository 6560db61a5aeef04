//! The OpenAPI description at `/openapi.json`: a well-formed OpenAPI 3.0 document, and the router's routes and the
//! document's operations are the same set (each documented operation is routed; each `.route(...)` in the source is
//! documented).

mod common;

use std::collections::BTreeSet;

use common::Server;
use serde_json::Value;

async fn document(s: &Server) -> Value {
    let r = s
        .http
        .get(format!("{}/openapi.json", s.root()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.unwrap()
}

/// Every `$ref` string in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn the_document_is_openapi_3_0_and_its_refs_resolve() {
    let s = Server::start().await;
    let doc = document(&s).await;
    assert_eq!(doc["openapi"], "3.0.3");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert_eq!(doc["servers"][0]["url"], s.root());
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() > 50, "{} paths", paths.len());
    let mut ids = BTreeSet::new();
    for (path, item) in paths {
        assert!(path.starts_with('/'), "{path}");
        let item = item.as_object().unwrap();
        assert!(!item.is_empty(), "{path} has no operation");
        for (method, op) in item {
            assert!(METHODS.contains(&method.as_str()), "{method} {path}");
            let responses = op["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path} has no responses");
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{method} {path} has no success response"
            );
            assert!(
                ids.insert(op["operationId"].as_str().unwrap().to_string()),
                "duplicate operationId at {method} {path}"
            );
            // every {param} of the path is declared as a required path parameter, and no other
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .inspect(|p| assert_eq!(p["required"], true, "{method} {path}"))
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            let in_path: BTreeSet<&str> =
                twin_api::openapi::path_params(path).into_iter().collect();
            assert_eq!(declared, in_path, "{method} {path}");
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 100);
    for r in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "$ref {r} does not resolve");
    }
}

/// A concrete path for a template: tiles numbers, other parameters a URN.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{z}" | "{x}" | "{y}" => "0".to_string(),
            "{layers}" => "buildings".to_string(),
            s if s.starts_with('{') => "urn%3Angsi-ld%3AThing%3A1".to_string(),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let s = Server::start().await;
    let doc = document(&s).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let url = format!("{}{}", s.root(), concrete(path));
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = s
                .http
                .request(m, &url)
                .header("content-type", "application/json")
                .body(if method == "get" || method == "delete" {
                    ""
                } else {
                    "{}"
                })
                .send()
                .await
                .unwrap();
            let status = r.status();
            assert_ne!(status, 405, "{method} {path}: no such method on the route");
            if path == "/api/events" {
                continue; // an open stream
            }
            let body = r.text().await.unwrap();
            assert!(
                !body.contains("no such resource in this API"),
                "{method} {path}: not routed ({status} {body})"
            );
            assert!(
                !status.is_server_error(),
                "{method} {path}: {status} {body}"
            );
        }
    }
}

/// The routes the source declares: each module's `.route("path", get(..).post(..))` calls under the prefix
/// `router` nests the module at.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let prefix = |module: &str| match module {
        "entities" | "batch" | "types" | "contexts" | "temporal" | "subscriptions" => "/ngsi-ld/v1",
        "datasets" | "scenarios" | "access" | "air" | "live" | "ingest" | "retention" | "auth"
        | "trust" | "consultations" => "/api",
        "ogc" => "/ogc",
        "tiles" => "/tiles",
        _ => "",
    };
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let mut path = entry.unwrap().path();
        // a module in a folder declares its routes in its mod.rs
        let module = path.file_stem().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            path = path.join("mod.rs");
            if !path.is_file() {
                continue;
            }
        } else if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            // the call's arguments, up to the matching parenthesis
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(i, _)| i)
                .unwrap();
            let call = &rest[..end];
            let Some(lit) = call.trim_start().strip_prefix('"') else {
                continue;
            };
            let route = &lit[..lit.find('"').unwrap()];
            let mut full = format!("{}{}", prefix(&module), route);
            if full.len() > 1 {
                full = full.trim_end_matches('/').to_string();
            }
            for m in METHODS {
                let calls = [
                    format!(" {m}("),
                    format!("({m}("),
                    format!(".{m}("),
                    format!("::{m}("),
                ];
                if calls.iter().any(|c| call.contains(c.as_str())) {
                    out.insert((m.to_string(), normalise(&full)));
                }
            }
        }
    }
    out
}

/// `{anything}` → `{}`: parameter names may differ between the router and the document.
fn normalise(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_is_documented_and_nothing_else() {
    let s = Server::start().await;
    let doc = document(&s).await;
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), normalise(p)))
        })
        .collect();
    let routed = routes_in_source();
    assert!(
        routed.len() > 60,
        "{} routes found in the source",
        routed.len()
    );
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.rs: {undocumented:?}"
    );
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
}

/// What the schemathesis run found (scripts/schemathesis; docs/api.md).
#[tokio::test]
async fn schemathesis_findings_are_client_errors() {
    let mut s = Server::start().await;
    s.http = s.admin_client().await;
    // a hosted context whose @context is a string that is no URL: was 503 LdContextNotAvailable (a server error)
    // while remote contexts are off, is 400 BadRequestData
    let r = s
        .post("/jsonldContexts", &serde_json::json!({"@context": "AAA"}))
        .await;
    common::assert_problem(r, 400, "BadRequestData").await;
    let r = s
        .http
        .get(s.url("/entities?type=Building"))
        .header("Link", Server::link("AAA"))
        .send()
        .await
        .unwrap();
    common::assert_problem(r, 400, "BadRequestData").await;
}

/// Scenario writes and model results document their 401 and 403 answers; runs and the 15-minute city their
/// provenance.
#[tokio::test]
async fn access_errors_and_provenance_are_described() {
    let s = Server::start().await;
    let doc = document(&s).await;
    let paths = &doc["paths"];
    for (method, path) in twin_api::openapi::AUTH_ERRORS {
        let responses = &paths[*path][*method]["responses"];
        assert!(responses.is_object(), "{method} {path} is not documented");
        for code in ["401", "403"] {
            let r = responses[code]["$ref"].as_str().unwrap();
            assert!(doc.pointer(r.strip_prefix('#').unwrap()).is_some(), "{r}");
        }
    }
    for (method, path, schema) in twin_api::openapi::ANSWERS {
        assert_eq!(
            paths[*path][*method]["responses"]
                .as_object()
                .unwrap()
                .iter()
                .find(|(k, _)| k.starts_with('2'))
                .unwrap()
                .1["content"]["application/json"]["schema"]["$ref"],
            format!("#/components/schemas/{schema}"),
            "{method} {path}"
        );
    }
    assert!(paths["/api/scenarios"]["post"]["responses"]["401"].is_object());
    // wrong credentials are a 401 on every operation, reads included
    assert!(paths["/api/scenarios"]["get"]["responses"]["401"].is_object());
    let schemas = &doc["components"]["schemas"];
    let provenance = &schemas["Provenance"]["properties"];
    for k in ["model", "parameters", "inputs", "requestedBy", "computedAt"] {
        assert!(provenance[k].is_object(), "{k}");
    }
    assert!(schemas["Run"]["properties"]["provenance"].is_object());
    assert!(schemas["Run"]["properties"]["requestedBy"].is_object());
    assert!(schemas["ScenarioResource"]["properties"]["owner"].is_object());
    assert_eq!(
        schemas["AccessSummary"]["properties"]["provenance"]["$ref"],
        "#/components/schemas/Provenance"
    );
}
