//! Every normalized example of the FIWARE Smart Data Models in the shared reference data can be created under its
//! own @context, found by type and by attribute, and read back under that context with the same names and values.

mod common;

use std::collections::HashMap;

use chrono::Utc;
use common::{shared_data, Server};
use serde_json::Value;
use twin_store::StoredContext;

fn domain_file(url: &str) -> Option<&'static str> {
    let d = url.split("dataModel.").nth(1)?.split('/').next()?;
    Some(match d {
        "Building" => "context-Building.jsonld",
        "Environment" => "context-Environment.jsonld",
        "Device" => "context-Device.jsonld",
        "Parking" => "context-Parking.jsonld",
        "PointOfInterest" => "context-PointOfInterest.jsonld",
        "Energy" => "context-Energy.jsonld",
        "Transportation" => "context-Transportation.jsonld",
        _ => return None,
    })
}

fn member(attr: &Value) -> Option<(&'static str, &Value)> {
    for m in ["value", "object", "languageMap"] {
        if let Some(v) = attr.get(m) {
            return Some((m, v));
        }
    }
    None
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-12,
        _ => a == b,
    }
}

#[tokio::test]
async fn smart_data_models_examples_round_trip() {
    let Some(data) = shared_data() else { return };
    let sdm = data.join("smart-data-models");
    let s = Server::start().await;
    let mut examples = Vec::new();
    let mut preloaded: HashMap<String, ()> = HashMap::new();
    for entry in std::fs::read_dir(&sdm).unwrap() {
        let dir = entry.unwrap().path();
        let file = dir.join("example-normalized.jsonld");
        if !file.is_file() {
            continue;
        }
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let ctx_urls: Vec<String> = match &doc["@context"] {
            Value::Array(a) => a
                .iter()
                .filter_map(|u| u.as_str().map(String::from))
                .collect(),
            Value::String(u) => vec![u.clone()],
            other => panic!("{}: unexpected @context {other}", file.display()),
        };
        let sdm_url = ctx_urls
            .iter()
            .find(|u| u.contains("smart-data-models"))
            .cloned()
            .expect("an SDM context");
        if !preloaded.contains_key(&sdm_url) {
            let f = domain_file(&sdm_url).unwrap_or_else(|| panic!("no local copy of {sdm_url}"));
            let text = std::fs::read_to_string(sdm.join(f)).unwrap();
            s.store
                .put_context(StoredContext {
                    id: twin_api::ld::context_id_for(&sdm_url),
                    url: sdm_url.clone(),
                    kind: "Cached".into(),
                    document: serde_json::from_str(&text).unwrap(),
                    created_at: Utc::now(),
                    last_usage: None,
                    number_of_hits: 0,
                })
                .await
                .unwrap();
            preloaded.insert(sdm_url.clone(), ());
        }
        examples.push((
            dir.file_name().unwrap().to_string_lossy().to_string(),
            doc,
            sdm_url,
        ));
    }
    assert!(
        examples.len() >= 10,
        "expected the Smart Data Models examples, found {}",
        examples.len()
    );

    for (name, doc, url) in &examples {
        let id = doc["id"].as_str().unwrap();
        let ty = doc["type"].as_str().unwrap();
        let r = s.post_ld("/entities", doc).await;
        let status = r.status();
        assert_eq!(status, 201, "{name}: {}", r.text().await.unwrap());

        let link = Server::link(url);
        // by type, under its own context
        let r = s
            .http
            .get(s.url(&format!("/entities?type={ty}&limit=100")))
            .header("Link", &link)
            .send()
            .await
            .unwrap();
        let found: Value = r.json().await.unwrap();
        assert!(
            found.as_array().unwrap().iter().any(|e| e["id"] == id),
            "{name}: not found by type"
        );

        // by attribute: every numeric property is queryable with ==, every attribute by existence
        for (attr, v) in doc.as_object().unwrap() {
            if matches!(attr.as_str(), "id" | "type" | "@context") {
                continue;
            }
            let q = match v.get("value").and_then(Value::as_f64) {
                Some(x) if v["type"] == "Property" => format!("{attr}=={x}"),
                _ => attr.clone(),
            };
            let enc = percent_encoding::utf8_percent_encode(&q, percent_encoding::NON_ALPHANUMERIC);
            let r = s
                .http
                .get(s.url(&format!("/entities?type={ty}&q={enc}")))
                .header("Link", &link)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            assert_eq!(status, 200, "{name} q={q}: {text}");
            let found: Value = serde_json::from_str(&text).unwrap();
            assert!(
                found.as_array().unwrap().iter().any(|e| e["id"] == id),
                "{name}: not found by q={q}"
            );
        }

        // read back under its own context: same names, same values
        let r = s
            .http
            .get(s.url(&format!("/entities/{id}")))
            .header("Link", &link)
            .send()
            .await
            .unwrap();
        let back: Value = r.json().await.unwrap();
        assert_eq!(back["type"], ty, "{name}: type compacts back");
        for (attr, v) in doc.as_object().unwrap() {
            if matches!(attr.as_str(), "id" | "type" | "@context") {
                continue;
            }
            let got = back
                .get(attr)
                .unwrap_or_else(|| panic!("{name}: attribute {attr} missing in {back}"));
            assert_eq!(got["type"], v["type"], "{name}.{attr}");
            let (m, want) = member(v).unwrap_or_else(|| panic!("{name}.{attr}: no value member"));
            assert!(
                same_value(&got[m], want),
                "{name}.{attr}: {} != {want}",
                got[m]
            );
        }

        // and under the core context alone the type is the full Smart Data Models IRI
        let plain = s.get_json(&format!("/entities/{id}")).await;
        assert!(
            plain["type"].as_str().unwrap().starts_with("https://"),
            "{name}: {}",
            plain["type"]
        );
    }
    s.store.check_integrity().await.unwrap();
}
