//! Where a model's answer comes from: the datasets its inputs were read from (with their title, licence, owner and
//! how many entities of each), for the `provenance` of scenario runs and of the 15-minute city's answers.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use twin_model::dataset::DEFAULT_DATASET;
use twin_model::{Dataset, Entity};

/// Per dataset id, how many of these entities belong to it (entities without a dataset: the default dataset).
pub fn dataset_counts<'a>(entities: impl IntoIterator<Item = &'a Entity>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for e in entities {
        let d = e.dataset.as_deref().unwrap_or(DEFAULT_DATASET);
        *counts.entry(d.to_string()).or_insert(0) += 1;
    }
    counts
}

/// The `inputs` of a provenance: per dataset, its id, title, licence and owner (null for a dataset without a
/// record) and how many of its entities the model read.
pub fn inputs_json(datasets: &BTreeMap<String, Dataset>, counts: &BTreeMap<String, u64>) -> Value {
    Value::Array(
        counts
            .iter()
            .map(|(id, n)| {
                let d = datasets.get(id);
                json!({
                    "dataset": id,
                    "title": d.map(|d| &d.title),
                    "licence": d.map(|d| &d.licence),
                    "owner": d.map(|d| &d.owner),
                    "entities": n,
                })
            })
            .collect(),
    )
}

/// The dataset ids and counts a stored provenance lists (what [`inputs_json`] wrote).
pub fn counts_of(provenance: &Value) -> BTreeMap<String, u64> {
    provenance["inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| Some((i["dataset"].as_str()?.to_string(), i["entities"].as_u64()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_listed_with_their_dataset_and_read_back() {
        let mut a = Entity::new("urn:a:1", "https://example.org/T");
        a.dataset = Some("urn:ngsi-ld:Dataset:x".into());
        let b = Entity::new("urn:a:2", "https://example.org/T");
        let mut c = b.clone();
        c.id = "urn:a:3".into();
        let counts = dataset_counts([&a, &b, &c]);
        assert_eq!(counts[DEFAULT_DATASET], 2);
        assert_eq!(counts["urn:ngsi-ld:Dataset:x"], 1);
        let mut datasets = BTreeMap::new();
        datasets.insert(DEFAULT_DATASET.to_string(), Dataset::default_dataset());
        let v = json!({"inputs": inputs_json(&datasets, &counts)});
        let default = &v["inputs"][0];
        assert_eq!(default["dataset"], DEFAULT_DATASET);
        assert_eq!(default["licence"], Dataset::default_dataset().licence);
        assert_eq!(default["entities"], 2);
        assert!(v["inputs"][1]["title"].is_null());
        assert_eq!(counts_of(&v), counts);
    }
}
