//! The demo twin's data: a handful of Smart Data Models entities in central Helsinki (buildings, air quality and
//! traffic sensors, road segments, points of interest), shipped in the binary and created on start when missing.

use std::sync::Arc;

use anyhow::{anyhow, Result};
use chrono::Utc;
use twin_model::dataset::Access;
use twin_model::ngsi::parse_entity;
use twin_model::{Context, Dataset, Provenance};
use twin_store::{ChangeOutcome, EntityChange, Store};

/// The demo entities (normalized NGSI-LD, core context). Values are illustrative, labelled as generated.
pub const DEMO_ENTITIES: &str = include_str!("../demo/helsinki-centre.json");

/// The dataset the demo entities belong to.
pub const DEMO_DATASET: &str = "urn:ngsi-ld:Dataset:urbantwin-demo";

/// Loads the demo entities that are not in the store yet (changes made to them since are kept); returns how many
/// demo entities there are.
pub async fn load(store: &Arc<dyn Store>) -> Result<usize> {
    store
        .put_dataset(Dataset {
            id: DEMO_DATASET.into(),
            title: "urbantwin demo: central Helsinki".into(),
            description: Some("Illustrative entities for trying urbantwin; sensor values are generated, not measured".into()),
            owner: "urbantwin".into(),
            licence: "CC0-1.0".into(),
            read: Access::Public,
            write: Access::Private,
            created_at: Some(Utc::now()),
        })
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let docs: Vec<serde_json::Value> = serde_json::from_str(DEMO_ENTITIES)?;
    let ctx = Context::core();
    let prov = Provenance {
        dataset: Some(DEMO_DATASET.into()),
        source: Some("urbantwin demo".into()),
        channel: Some("import:demo".into()),
    };
    let mut changes: Vec<(String, EntityChange)> = Vec::new();
    for d in &docs {
        let e = parse_entity(d, &ctx, Utc::now(), &prov)
            .map_err(|e| anyhow!("demo entity {}: {e}", d["id"]))?;
        let id = e.id.clone();
        changes.push((
            id,
            Box::new(move |old| {
                if old.is_some() {
                    // already loaded (and perhaps changed since): left as it is
                    return Ok(ChangeOutcome::Nothing {
                        result: serde_json::Value::Null,
                    });
                }
                let written = e
                    .attrs
                    .iter()
                    .flat_map(|(n, l)| l.iter().map(move |a| (n.clone(), a.dataset_id.clone())))
                    .collect();
                Ok(ChangeOutcome::Put {
                    entity: e,
                    written,
                    removed: vec![],
                    result: serde_json::Value::Null,
                })
            }),
        ));
    }
    let n = changes.len();
    for r in store
        .write_batch(changes)
        .await
        .map_err(|e| anyhow!("{e}"))?
    {
        r.map_err(|e| anyhow!("{e}"))?;
    }
    Ok(n)
}
