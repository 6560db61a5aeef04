//! Datasets: every entity belongs to one, and a dataset names its owner, its licence and who may read and write it.
//! Enforcement of the policies comes with accounts; the data model is here from the start so no value is ownerless.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{NgsiError, Result};
use crate::policy::{AttributeRule, UsagePolicy};

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
    /// Per-attribute read rules, on top of `read` (see [`crate::policy::hidden_attributes`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AttributeRule>,
    /// What the data may be used for, in a subset of ODRL 2.2 (see [`crate::policy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_policy: Option<UsagePolicy>,
    /// What the DCAT-AP catalogue says of it besides the above (keywords, themes, update frequency, contact).
    #[serde(flatten, default)]
    pub catalog: CatalogInfo,
}

/// A dataset's description for data portals (DCAT-AP): optional, each field in the dataset's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CatalogInfo {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// Codes of the EU data themes vocabulary ([`DATA_THEMES`]), e.g. `TRAN`, `ENVI`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub themes: Vec<String>,
    /// A code of the EU frequency vocabulary ([`FREQUENCIES`]), e.g. `UPDATE_CONT` for live sensor data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_frequency: Option<String>,
    /// An e-mail address or URL to ask about the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_point: Option<String>,
    /// A web page about the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing_page: Option<String>,
}

/// The EU Publications Office's data themes (`http://publications.europa.eu/resource/authority/data-theme/`).
pub const DATA_THEMES: [&str; 14] = [
    "AGRI",
    "ECON",
    "EDUC",
    "ENER",
    "ENVI",
    "GOVE",
    "HEAL",
    "INTR",
    "JUST",
    "OP_DATPRO",
    "REGI",
    "SOCI",
    "TECH",
    "TRAN",
];

/// Update frequencies of the EU Publications Office's vocabulary
/// (`http://publications.europa.eu/resource/authority/frequency/`) that suit a city's data.
pub const FREQUENCIES: [&str; 13] = [
    "UPDATE_CONT",
    "CONT",
    "HOURLY",
    "DAILY",
    "WEEKLY",
    "MONTHLY",
    "QUARTERLY",
    "ANNUAL",
    "IRREG",
    "NEVER",
    "UNKNOWN",
    "OTHER",
    "BIENNIAL",
];

impl CatalogInfo {
    /// Checks the codes against their vocabularies and the contact and page against their forms.
    pub fn validate(&self) -> Result<()> {
        if let Some(t) = self
            .themes
            .iter()
            .find(|t| !DATA_THEMES.contains(&t.as_str()))
        {
            return Err(NgsiError::bad_data(format!(
                "theme {t:?} is not a code of the EU data themes ({})",
                DATA_THEMES.join(", ")
            )));
        }
        if let Some(f) = self.update_frequency.as_deref() {
            if !FREQUENCIES.contains(&f) {
                return Err(NgsiError::bad_data(format!(
                    "update frequency {f:?} is not one of {}",
                    FREQUENCIES.join(", ")
                )));
            }
        }
        if self.keywords.iter().any(|k| k.trim().is_empty()) {
            return Err(NgsiError::bad_data("a keyword is empty"));
        }
        if let Some(c) = self.contact_point.as_deref() {
            let email = c.contains('@') && !c.contains(char::is_whitespace) && !c.contains('/');
            if !email && !is_web_url(c) {
                return Err(NgsiError::bad_data(format!(
                    "contact point {c:?} is neither an e-mail address nor an http(s) URL"
                )));
            }
        }
        if let Some(p) = self.landing_page.as_deref() {
            if !is_web_url(p) {
                return Err(NgsiError::bad_data(format!(
                    "landing page {p:?} is not an http(s) URL"
                )));
            }
        }
        Ok(())
    }
}

fn is_web_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && s.len() > 8
        && !s.contains(char::is_whitespace)
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
            attributes: Vec::new(),
            usage_policy: None,
            catalog: CatalogInfo::default(),
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
        for (what, access) in [("read", &self.read), ("write", &self.write)] {
            check_access(what, access)?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for rule in &self.attributes {
            if rule.attribute.trim().is_empty() {
                return Err(NgsiError::bad_data(
                    "an attribute rule needs an attribute name",
                ));
            }
            if !seen.insert(rule.attribute.as_str()) {
                return Err(NgsiError::bad_data(format!(
                    "the attribute {:?} has more than one rule",
                    rule.attribute
                )));
            }
            check_access(&format!("attribute {:?} read", rule.attribute), &rule.read)?;
            if let Some(a) = &rule.aggregate {
                check_access(&format!("attribute {:?} aggregate", rule.attribute), a)?;
            }
        }
        if let Some(policy) = &self.usage_policy {
            policy.validate()?;
        }
        self.catalog.validate()?;
        Ok(())
    }
}

/// A group list must name at least one group, none blank.
fn check_access(what: &str, access: &Access) -> Result<()> {
    if let Access::Groups(gs) = access {
        if gs.is_empty() {
            return Err(NgsiError::bad_data(format!(
                "{what}: a groups access needs at least one group"
            )));
        }
        if gs.iter().any(|g| g.trim().is_empty()) {
            return Err(NgsiError::bad_data(format!(
                "{what}: a group name is blank"
            )));
        }
    }
    Ok(())
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
        let mut c = g.clone();
        c.catalog = serde_json::from_value(serde_json::json!({
            "keywords": ["energy"], "themes": ["ENER"], "updateFrequency": "UPDATE_CONT",
            "contactPoint": "energy@city.example", "landingPage": "https://city.example/meters"
        }))
        .unwrap();
        c.validate().unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v["updateFrequency"], "UPDATE_CONT",
            "flattened into the dataset: {v}"
        );
        assert_eq!(serde_json::from_value::<Dataset>(v).unwrap(), c);
        for bad in [
            serde_json::json!({"themes": ["TRAFFIC"]}),
            serde_json::json!({"updateFrequency": "sometimes"}),
            serde_json::json!({"contactPoint": "call us"}),
            serde_json::json!({"landingPage": "ftp://x"}),
            serde_json::json!({"keywords": [" "]}),
        ] {
            let mut b = g.clone();
            b.catalog = serde_json::from_value(bad.clone()).unwrap();
            assert!(b.validate().is_err(), "{bad} accepted");
        }
        assert!(Dataset {
            title: " ".into(),
            ..g
        }
        .validate()
        .is_err());
    }
}
