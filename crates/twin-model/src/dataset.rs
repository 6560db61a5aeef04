//! Datasets: every entity belongs to one, and a dataset names its owner, its licence and who may read and write it.
//! Enforcement of the policies comes with accounts; the data model is here from the start so no value is ownerless.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{NgsiError, Result};

/// The dataset that entities written without naming one belong to.
pub const DEFAULT_DATASET: &str = "urn:ngsi-ld:Dataset:default";

/// Who may perform an operation on a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", tag = "kind", content = "groups")]
pub enum Access {
    /// Anyone, without an account.
    #[default]
    Public,
    /// Any signed-in account.
    Registered,
    /// Members of the named groups (and the owner).
    Groups(Vec<String>),
    /// Only the owner and administrators.
    Private,
}

/// A dataset: the unit of ownership, licensing and access policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dataset {
    /// `urn:ngsi-ld:Dataset:...`
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The account or organisation that owns the data.
    pub owner: String,
    /// SPDX identifier or licence URL (`CC-BY-4.0`, `ODbL-1.0`, ...).
    pub licence: String,
    #[serde(default)]
    pub read: Access,
    #[serde(default)]
    pub write: Access,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

impl Dataset {
    /// The dataset that holds entities written without naming a dataset.
    pub fn default_dataset() -> Dataset {
        Dataset {
            id: DEFAULT_DATASET.into(),
            title: "Default dataset".into(),
            description: Some("Entities written through the API without naming a dataset".into()),
            owner: "urbantwin".into(),
            licence: "CC-BY-4.0".into(),
            read: Access::Public,
            write: Access::Public,
            created_at: None,
        }
    }

    /// Checks the fields a client supplies.
    pub fn validate(&self) -> Result<()> {
        if !crate::ngsi::is_uri(&self.id) {
            return Err(NgsiError::bad_data(format!(
                "dataset id {:?} is not a URI",
                self.id
            )));
        }
        if self.title.trim().is_empty() {
            return Err(NgsiError::bad_data("a dataset needs a title"));
        }
        if self.owner.trim().is_empty() {
            return Err(NgsiError::bad_data("a dataset needs an owner"));
        }
        if self.licence.trim().is_empty() {
            return Err(NgsiError::bad_data("a dataset needs a licence"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_dataset_is_valid_and_serializes() {
        let d = Dataset::default_dataset();
        d.validate().unwrap();
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["read"]["kind"], "public");
        let g: Dataset = serde_json::from_value(serde_json::json!({
            "id": "urn:ngsi-ld:Dataset:meters", "title": "Meters", "owner": "utility", "licence": "proprietary",
            "read": {"kind": "groups", "groups": ["energy"]}, "write": {"kind": "private"}
        }))
        .unwrap();
        assert_eq!(g.read, Access::Groups(vec!["energy".into()]));
        assert!(Dataset {
            title: " ".into(),
            ..g
        }
        .validate()
        .is_err());
    }
}
