//! NGSI-LD entities and attributes in urbantwin's internal form: every name and type is an expanded IRI, every
//! attribute instance carries its system times, `datasetId` and provenance. Parsing and rendering live in `ngsi`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Expanded IRIs of the NGSI-LD core members that are not user attributes.
pub mod iri {
    pub const NGSI_LD: &str = "https://uri.etsi.org/ngsi-ld/";
    pub const LOCATION: &str = "https://uri.etsi.org/ngsi-ld/location";
    pub const OBSERVATION_SPACE: &str = "https://uri.etsi.org/ngsi-ld/observationSpace";
    pub const OPERATION_SPACE: &str = "https://uri.etsi.org/ngsi-ld/operationSpace";
    pub const OBSERVED_AT: &str = "https://uri.etsi.org/ngsi-ld/observedAt";
    pub const CREATED_AT: &str = "https://uri.etsi.org/ngsi-ld/createdAt";
    pub const MODIFIED_AT: &str = "https://uri.etsi.org/ngsi-ld/modifiedAt";
    pub const UNIT_CODE: &str = "https://uri.etsi.org/ngsi-ld/unitCode";
    pub const DATASET_ID: &str = "https://uri.etsi.org/ngsi-ld/datasetId";
    pub const DEFAULT_CONTEXT: &str = "https://uri.etsi.org/ngsi-ld/default-context/";
}

/// The kind of an attribute, as its NGSI-LD `type` member says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AttrKind {
    Property,
    Relationship,
    GeoProperty,
    LanguageProperty,
    VocabProperty,
    JsonProperty,
    ListProperty,
    ListRelationship,
}

impl AttrKind {
    /// The NGSI-LD name of the kind (the `type` member of a normalized attribute).
    pub fn as_str(self) -> &'static str {
        match self {
            AttrKind::Property => "Property",
            AttrKind::Relationship => "Relationship",
            AttrKind::GeoProperty => "GeoProperty",
            AttrKind::LanguageProperty => "LanguageProperty",
            AttrKind::VocabProperty => "VocabProperty",
            AttrKind::JsonProperty => "JsonProperty",
            AttrKind::ListProperty => "ListProperty",
            AttrKind::ListRelationship => "ListRelationship",
        }
    }

    /// Parses the `type` member of a normalized attribute (compact names or core-context IRIs).
    pub fn parse(s: &str) -> Option<AttrKind> {
        let s = s.strip_prefix("https://uri.etsi.org/ngsi-ld/").unwrap_or(s);
        Some(match s {
            "Property" => AttrKind::Property,
            "Relationship" => AttrKind::Relationship,
            "GeoProperty" => AttrKind::GeoProperty,
            "LanguageProperty" => AttrKind::LanguageProperty,
            "VocabProperty" => AttrKind::VocabProperty,
            "JsonProperty" => AttrKind::JsonProperty,
            "ListProperty" => AttrKind::ListProperty,
            "ListRelationship" => AttrKind::ListRelationship,
            _ => return None,
        })
    }

    /// The member that holds the value of an attribute of this kind (`value`, `object`, `languageMap`, ...).
    pub fn value_member(self) -> &'static str {
        match self {
            AttrKind::Property | AttrKind::GeoProperty => "value",
            AttrKind::Relationship => "object",
            AttrKind::LanguageProperty => "languageMap",
            AttrKind::VocabProperty => "vocab",
            AttrKind::JsonProperty => "json",
            AttrKind::ListProperty => "valueList",
            AttrKind::ListRelationship => "objectList",
        }
    }
}

/// Where an attribute value came from: who wrote it, through which channel, as part of which dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The urbantwin dataset the write belongs to (`urn:ngsi-ld:Dataset:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// The client that wrote it (API key name, account, device id, importer run...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The channel: `ngsi-ld`, `temporal`, `batch`, `mqtt`, `import:osm`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

impl Provenance {
    pub fn is_empty(&self) -> bool {
        self.dataset.is_none() && self.source.is_none() && self.channel.is_none()
    }
}

/// One instance of an attribute. An attribute may have several instances, told apart by `dataset_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub kind: AttrKind,
    /// The value member of the kind: a JSON value for `Property`, an IRI (or array of IRIs) for `Relationship`, a
    /// GeoJSON geometry for `GeoProperty`, a language map object for `LanguageProperty`, expanded IRI(s) for
    /// `VocabProperty`, any JSON for `JsonProperty`, an array for the list kinds.
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_code: Option<String>,
    /// For relationships: the expanded type(s) of the target entity (`objectType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<DateTime<Utc>>,
    /// Temporal instance id, set on instances kept in the temporal store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Sub-attributes by expanded name (one instance each).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sub: BTreeMap<String, Attribute>,
    #[serde(default, skip_serializing_if = "Provenance::is_empty")]
    pub provenance: Provenance,
}

impl Attribute {
    /// A plain property with the given value and nothing else.
    pub fn property(value: Value) -> Attribute {
        Attribute::new(AttrKind::Property, value)
    }

    pub fn new(kind: AttrKind, value: Value) -> Attribute {
        Attribute {
            kind,
            value,
            dataset_id: None,
            observed_at: None,
            unit_code: None,
            object_type: None,
            created_at: None,
            modified_at: None,
            instance_id: None,
            sub: BTreeMap::new(),
            provenance: Provenance::default(),
        }
    }
}

/// An NGSI-LD entity with expanded type and attribute names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub id: String,
    /// Expanded type IRIs, at least one.
    pub types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Attribute instances by expanded attribute name; instances of one attribute have distinct `dataset_id`s.
    #[serde(default)]
    pub attrs: BTreeMap<String, Vec<Attribute>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<DateTime<Utc>>,
    /// The urbantwin dataset the entity belongs to (owner, licence and policy live there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
}

impl Entity {
    pub fn new(id: impl Into<String>, ty: impl Into<String>) -> Entity {
        Entity {
            id: id.into(),
            types: vec![ty.into()],
            scopes: Vec::new(),
            attrs: BTreeMap::new(),
            created_at: None,
            modified_at: None,
            dataset: None,
        }
    }

    /// The instance of `attr` with the given datasetId (None = the default instance).
    pub fn instance(&self, attr: &str, dataset_id: Option<&str>) -> Option<&Attribute> {
        self.attrs
            .get(attr)?
            .iter()
            .find(|a| a.dataset_id.as_deref() == dataset_id)
    }

    /// Every GeoJSON geometry held by the GeoProperty `attr` (all its instances).
    pub fn geometries<'a>(&'a self, attr: &str) -> impl Iterator<Item = &'a Value> + 'a {
        self.attrs
            .get(attr)
            .into_iter()
            .flatten()
            .filter(|a| a.kind == AttrKind::GeoProperty)
            .map(|a| &a.value)
    }
}
