//! The NGSI-LD update semantics as pure functions on an [`Entity`]: append (with `noOverwrite`), update, partial
//! attribute update, merge-patch (null deletes), replace and attribute deletion, keeping system times right.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::context::Context;
use crate::entity::{Attribute, Entity, Provenance};
use crate::error::{NgsiError, Result};
use crate::ngsi::{parse_attribute, render_attribute, Format, RenderOptions};

/// The NGSI-LD null sentinel that deletes in merge-patch.
pub const NGSI_NULL: &str = "urn:ngsi-ld:null";

/// An attribute instance written: `(expanded name, datasetId)`.
pub type Written = (String, Option<String>);

/// Outcome of an update that may partly fail (`notUpdated` in NGSI-LD UpdateResult).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct UpdateReport {
    pub written: Vec<Written>,
    pub removed: Vec<String>,
    /// `(expanded attribute name, reason)`
    pub not_updated: Vec<(String, String)>,
}

/// Every attribute instance of an entity (what a creation writes).
pub fn all_instances(e: &Entity) -> Vec<Written> {
    e.attrs
        .iter()
        .flat_map(|(n, list)| list.iter().map(move |a| (n.clone(), a.dataset_id.clone())))
        .collect()
}

fn put_instance(e: &mut Entity, name: &str, mut a: Attribute, now: DateTime<Utc>) -> Written {
    let list = e.attrs.entry(name.to_string()).or_default();
    a.modified_at = Some(now);
    let ds = a.dataset_id.clone();
    match list.iter_mut().find(|x| x.dataset_id == a.dataset_id) {
        Some(slot) => {
            a.created_at = slot.created_at.or(Some(now));
            *slot = a;
        }
        None => {
            a.created_at = Some(now);
            list.push(a);
        }
    }
    (name.to_string(), ds)
}

/// Appends attributes (`POST /entities/{id}/attrs`): new ones are added; existing instances are replaced unless
/// `no_overwrite`, in which case they are reported as not updated.
pub fn append(
    e: &mut Entity,
    attrs: BTreeMap<String, Vec<Attribute>>,
    no_overwrite: bool,
    now: DateTime<Utc>,
) -> UpdateReport {
    let mut r = UpdateReport::default();
    for (name, instances) in attrs {
        for a in instances {
            if no_overwrite && e.instance(&name, a.dataset_id.as_deref()).is_some() {
                r.not_updated.push((
                    name.clone(),
                    "attribute exists and noOverwrite was given".into(),
                ));
                continue;
            }
            r.written.push(put_instance(e, &name, a, now));
        }
    }
    touch(e, &r, now);
    r
}

/// Updates existing attributes (`PATCH /entities/{id}/attrs`): only instances that exist are replaced.
pub fn update(
    e: &mut Entity,
    attrs: BTreeMap<String, Vec<Attribute>>,
    now: DateTime<Utc>,
) -> UpdateReport {
    let mut r = UpdateReport::default();
    for (name, instances) in attrs {
        for a in instances {
            if e.instance(&name, a.dataset_id.as_deref()).is_none() {
                r.not_updated.push((
                    name.clone(),
                    match &a.dataset_id {
                        Some(d) => format!(
                            "the entity has no instance of this attribute with datasetId {d}"
                        ),
                        None => "the entity has no such attribute".into(),
                    },
                ));
                continue;
            }
            r.written.push(put_instance(e, &name, a, now));
        }
    }
    touch(e, &r, now);
    r
}

/// Replaces one attribute (`PUT /entities/{id}/attrs/{attr}`); it must exist.
pub fn replace_attribute(
    e: &mut Entity,
    name: &str,
    instances: Vec<Attribute>,
    now: DateTime<Utc>,
) -> Result<UpdateReport> {
    if !e.attrs.contains_key(name) {
        return Err(NgsiError::not_found(format!(
            "entity {} has no attribute {name}",
            e.id
        )));
    }
    let mut r = UpdateReport::default();
    for a in instances {
        r.written.push(put_instance(e, name, a, now));
    }
    touch(e, &r, now);
    Ok(r)
}

/// Deletes an attribute: the default instance, the one with `dataset_id`, or all instances.
pub fn delete_attribute(
    e: &mut Entity,
    name: &str,
    dataset_id: Option<&str>,
    all: bool,
    now: DateTime<Utc>,
) -> Result<UpdateReport> {
    let Some(list) = e.attrs.get_mut(name) else {
        return Err(NgsiError::not_found(format!(
            "entity {} has no attribute {name}",
            e.id
        )));
    };
    if all {
        e.attrs.remove(name);
    } else {
        let before = list.len();
        list.retain(|a| a.dataset_id.as_deref() != dataset_id);
        if list.len() == before {
            return Err(NgsiError::not_found(match dataset_id {
                Some(d) => format!(
                    "attribute {name} of {} has no instance with datasetId {d}",
                    e.id
                ),
                None => format!("attribute {name} of {} has no default instance", e.id),
            }));
        }
        if list.is_empty() {
            e.attrs.remove(name);
        }
    }
    let r = UpdateReport {
        removed: vec![name.to_string()],
        ..Default::default()
    };
    e.modified_at = Some(now);
    Ok(r)
}

/// Replaces the whole entity (`PUT /entities/{id}`), keeping its creation time and the creation times of
/// attribute instances that stay.
pub fn replace_entity(old: &Entity, mut new: Entity, now: DateTime<Utc>) -> (Entity, UpdateReport) {
    let mut r = UpdateReport::default();
    for (name, instances) in new.attrs.iter_mut() {
        for a in instances.iter_mut() {
            a.created_at = old
                .instance(name, a.dataset_id.as_deref())
                .and_then(|o| o.created_at)
                .or(Some(now));
            a.modified_at = Some(now);
            r.written.push((name.clone(), a.dataset_id.clone()));
        }
    }
    r.removed = old
        .attrs
        .keys()
        .filter(|k| !new.attrs.contains_key(*k))
        .cloned()
        .collect();
    new.created_at = old.created_at;
    new.modified_at = Some(now);
    if new.dataset.is_none() {
        new.dataset = old.dataset.clone();
    }
    (new, r)
}

/// True when two attribute instances say the same thing (value and metadata), whatever their system times and
/// provenance.
pub fn same_content(a: &Attribute, b: &Attribute) -> bool {
    a.kind == b.kind
        && a.value == b.value
        && a.dataset_id == b.dataset_id
        && a.observed_at == b.observed_at
        && a.unit_code == b.unit_code
        && a.object_type == b.object_type
        && a.sub.len() == b.sub.len()
        && a.sub
            .iter()
            .all(|(k, x)| b.sub.get(k).is_some_and(|y| same_content(x, y)))
}

/// Re-import of an entity: the new state replaces the old one, but attribute instances whose content did not change
/// keep their times and are not reported as written (so they add no history). None when nothing changed at all.
pub fn reimport(old: &Entity, new: Entity, now: DateTime<Utc>) -> Option<(Entity, UpdateReport)> {
    let (mut merged, _) = replace_entity(old, new, now);
    let mut report = UpdateReport::default();
    for (name, instances) in merged.attrs.iter_mut() {
        for a in instances.iter_mut() {
            match old.instance(name, a.dataset_id.as_deref()) {
                Some(o) if same_content(o, a) => {
                    a.created_at = o.created_at;
                    a.modified_at = o.modified_at;
                    a.provenance = o.provenance.clone();
                }
                _ => report.written.push((name.clone(), a.dataset_id.clone())),
            }
        }
    }
    for (name, instances) in &old.attrs {
        let gone = match merged.attrs.get(name) {
            None => true,
            Some(now_list) => instances
                .iter()
                .any(|o| !now_list.iter().any(|a| a.dataset_id == o.dataset_id)),
        };
        if gone {
            report.removed.push(name.clone());
        }
    }
    if report.written.is_empty()
        && report.removed.is_empty()
        && old.types == merged.types
        && old.scopes == merged.scopes
    {
        return None;
    }
    merged.modified_at = Some(now);
    Some((merged, report))
}

fn touch(e: &mut Entity, r: &UpdateReport, now: DateTime<Utc>) {
    if !r.written.is_empty() || !r.removed.is_empty() {
        e.modified_at = Some(now);
    }
}

fn is_null(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some(NGSI_NULL)
}

/// JSON merge of an attribute fragment into a normalized attribute object: members are replaced, sub-attributes
/// merged recursively, null (or `urn:ngsi-ld:null`) removes a sub-attribute.
fn merge_attribute_json(base: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if is_null(v) {
            base.remove(k);
            continue;
        }
        let is_member = matches!(
            k.as_str(),
            "type"
                | "value"
                | "object"
                | "languageMap"
                | "vocab"
                | "json"
                | "valueList"
                | "objectList"
                | "observedAt"
                | "unitCode"
                | "datasetId"
                | "objectType"
        );
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(p)) if !is_member => merge_attribute_json(b, p),
            (Some(Value::Object(b)), Value::Object(p)) if k == "languageMap" => {
                for (lk, lv) in p {
                    if is_null(lv) {
                        b.remove(lk);
                    } else {
                        b.insert(lk.clone(), lv.clone());
                    }
                }
            }
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    // a fragment that changes the kind by giving only the new value member drops the old one
    let members = [
        "value",
        "object",
        "languageMap",
        "vocab",
        "json",
        "valueList",
        "objectList",
    ];
    if let Some(newest) = members.iter().find(|m| patch.contains_key(**m)) {
        for m in members {
            if m != *newest && base.contains_key(m) && !patch.contains_key(m) {
                base.remove(m);
            }
        }
        if !patch.contains_key("type") {
            base.remove("type");
        }
    }
}

fn normalized(a: &Attribute, ctx: &Context) -> Map<String, Value> {
    match render_attribute(
        a,
        ctx,
        &RenderOptions {
            format: Format::Normalized,
            ..Default::default()
        },
    ) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Turns a concise fragment value into an object so it can be merged.
fn fragment_object(v: &Value) -> Map<String, Value> {
    match v {
        Value::Object(m)
            if m.contains_key("value")
                || m.contains_key("object")
                || m.contains_key("type")
                || m.contains_key("languageMap")
                || m.contains_key("vocab")
                || m.contains_key("json")
                || m.contains_key("valueList")
                || m.contains_key("objectList") =>
        {
            m.clone()
        }
        other => {
            let mut m = Map::new();
            m.insert("value".into(), other.clone());
            m
        }
    }
}

/// Partial update of one attribute (`PATCH /entities/{id}/attrs/{attr}`): the fragment is merged into the existing
/// instance named by its datasetId (all instances with `all`).
pub fn partial_update_attribute(
    e: &mut Entity,
    name: &str,
    compact_name: &str,
    fragment: &Value,
    ctx: &Context,
    now: DateTime<Utc>,
    prov: &Provenance,
) -> Result<UpdateReport> {
    let frag = fragment
        .as_object()
        .ok_or_else(|| NgsiError::bad_data("an attribute fragment must be a JSON object"))?
        .clone();
    let ds = match frag.get("datasetId") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(NgsiError::bad_data("datasetId must be a URI")),
    };
    let existing = e
        .instance(name, ds.as_deref())
        .ok_or_else(|| {
            NgsiError::not_found(format!("entity {} has no attribute {compact_name}", e.id))
        })?
        .clone();
    let mut base = normalized(&existing, ctx);
    merge_attribute_json(&mut base, &frag);
    let parsed = parse_attribute(compact_name, &Value::Object(base), ctx, now, prov)?;
    let mut r = UpdateReport::default();
    for mut a in parsed {
        a.sub = keep_sub_times(&existing, a.sub);
        r.written.push(put_instance(e, name, a, now));
    }
    touch(e, &r, now);
    Ok(r)
}

fn keep_sub_times(
    old: &Attribute,
    mut sub: BTreeMap<String, Attribute>,
) -> BTreeMap<String, Attribute> {
    for (k, s) in sub.iter_mut() {
        if let Some(o) = old.sub.get(k) {
            s.created_at = o.created_at;
        }
    }
    sub
}

/// Merge-patch of an entity (`PATCH /entities/{id}`, batch merge): attributes in the fragment are merged into the
/// existing ones or added, null (or `urn:ngsi-ld:null`) deletes an attribute.
pub fn merge_entity(
    e: &mut Entity,
    fragment: &Map<String, Value>,
    ctx: &Context,
    now: DateTime<Utc>,
    prov: &Provenance,
) -> Result<UpdateReport> {
    let mut r = UpdateReport::default();
    for (k, v) in fragment {
        if matches!(
            k.as_str(),
            "id" | "@id" | "type" | "@type" | "@context" | "scope" | "createdAt" | "modifiedAt"
        ) {
            continue;
        }
        crate::ngsi::check_name(k, "attribute")?;
        let name = ctx.expand(k);
        if is_null(v) {
            if e.attrs.remove(&name).is_some() {
                r.removed.push(name);
            }
            continue;
        }
        let instances: Vec<&Value> = match v {
            Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
                items.iter().collect()
            }
            other => vec![other],
        };
        for inst in instances {
            let frag = fragment_object(inst);
            let ds = frag
                .get("datasetId")
                .and_then(Value::as_str)
                .map(String::from);
            let merged = match e.instance(&name, ds.as_deref()) {
                Some(old) => {
                    let mut base = normalized(old, ctx);
                    merge_attribute_json(&mut base, &frag);
                    Value::Object(base)
                }
                None => inst.clone(),
            };
            let old = e.instance(&name, ds.as_deref()).cloned();
            for mut a in parse_attribute(k, &merged, ctx, now, prov)? {
                if let Some(o) = &old {
                    a.sub = keep_sub_times(o, a.sub);
                }
                r.written.push(put_instance(e, &name, a, now));
            }
        }
    }
    if let Some(s) = fragment.get("scope") {
        e.scopes = if is_null(s) {
            Vec::new()
        } else {
            crate::ngsi::parse_scope(Some(s))?
        };
        e.modified_at = Some(now);
    }
    touch(e, &r, now);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ngsi::{parse_datetime, parse_entity};
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        parse_datetime(s).unwrap()
    }

    fn entity() -> Entity {
        parse_entity(
            &json!({"id": "urn:x:1", "type": "T", "a": 1, "b": {"type": "Property", "value": 2, "q": {"type": "Property", "value": "x"}}}),
            &Context::core(),
            t("2024-01-01T00:00:00Z"),
            &Provenance::default(),
        )
        .unwrap()
    }

    fn attrs(v: Value) -> BTreeMap<String, Vec<Attribute>> {
        crate::ngsi::parse_attributes(
            v.as_object().unwrap(),
            &Context::core(),
            t("2024-01-02T00:00:00Z"),
            &Provenance::default(),
        )
        .unwrap()
    }

    const A: &str = "https://uri.etsi.org/ngsi-ld/default-context/a";
    const B: &str = "https://uri.etsi.org/ngsi-ld/default-context/b";
    const C: &str = "https://uri.etsi.org/ngsi-ld/default-context/c";

    #[test]
    fn append_respects_no_overwrite_and_keeps_created_at() {
        let now = t("2024-01-02T00:00:00Z");
        let mut e = entity();
        let r = append(&mut e, attrs(json!({"a": 5, "c": 3})), true, now);
        assert_eq!(r.written, vec![(C.to_string(), None)]);
        assert_eq!(r.not_updated.len(), 1);
        assert_eq!(e.attrs[A][0].value, json!(1));
        let r = append(&mut e, attrs(json!({"a": 5})), false, now);
        assert_eq!(r.written.len(), 1);
        assert_eq!(e.attrs[A][0].value, json!(5));
        assert_eq!(e.attrs[A][0].created_at, Some(t("2024-01-01T00:00:00Z")));
        assert_eq!(e.modified_at, Some(now));
    }

    #[test]
    fn update_only_touches_existing() {
        let mut e = entity();
        let r = update(
            &mut e,
            attrs(json!({"a": 7, "zz": 1})),
            t("2024-01-02T00:00:00Z"),
        );
        assert_eq!(r.written.len(), 1);
        assert_eq!(
            r.not_updated[0].0,
            "https://uri.etsi.org/ngsi-ld/default-context/zz"
        );
        assert!(!e
            .attrs
            .contains_key("https://uri.etsi.org/ngsi-ld/default-context/zz"));
    }

    #[test]
    fn merge_patch_merges_sub_attributes_and_deletes_nulls() {
        let mut e = entity();
        let ctx = Context::core();
        let frag = json!({"a": null, "b": {"value": 9, "r": {"type": "Property", "value": true}}, "c": {"type": "Property", "value": 4}});
        let r = merge_entity(
            &mut e,
            frag.as_object().unwrap(),
            &ctx,
            t("2024-01-03T00:00:00Z"),
            &Provenance::default(),
        )
        .unwrap();
        assert_eq!(r.removed, vec![A.to_string()]);
        assert!(!e.attrs.contains_key(A));
        let b = &e.attrs[B][0];
        assert_eq!(b.value, json!(9));
        assert_eq!(b.sub.len(), 2, "existing sub-attribute q kept, r added");
        assert_eq!(b.created_at, Some(t("2024-01-01T00:00:00Z")));
        assert_eq!(e.attrs[C][0].value, json!(4));
    }

    #[test]
    fn partial_update_and_delete() {
        let mut e = entity();
        let ctx = Context::core();
        let now = t("2024-01-03T00:00:00Z");
        partial_update_attribute(
            &mut e,
            B,
            "b",
            &json!({"value": 10, "q": "urn:ngsi-ld:null"}),
            &ctx,
            now,
            &Provenance::default(),
        )
        .unwrap();
        assert_eq!(e.attrs[B][0].value, json!(10));
        assert!(e.attrs[B][0].sub.is_empty());
        assert!(partial_update_attribute(
            &mut e,
            C,
            "c",
            &json!({"value": 1}),
            &ctx,
            now,
            &Provenance::default()
        )
        .is_err());
        delete_attribute(&mut e, B, None, false, now).unwrap();
        assert!(delete_attribute(&mut e, B, None, false, now).is_err());
    }

    #[test]
    fn reimport_reports_only_what_changed() {
        let old = entity();
        let same = entity();
        assert!(reimport(&old, same, t("2024-02-01T00:00:00Z")).is_none());
        let changed = parse_entity(
            &json!({"id": "urn:x:1", "type": "T", "a": 2, "b": {"type": "Property", "value": 2, "q": {"type": "Property", "value": "x"}}}),
            &Context::core(),
            t("2024-02-01T00:00:00Z"),
            &Provenance::default(),
        )
        .unwrap();
        let (e, r) = reimport(&old, changed, t("2024-02-01T00:00:00Z")).unwrap();
        assert_eq!(r.written, vec![(A.to_string(), None)]);
        assert_eq!(
            e.attrs[B][0].modified_at,
            Some(t("2024-01-01T00:00:00Z")),
            "unchanged attribute keeps its time"
        );
        assert_eq!(e.attrs[A][0].created_at, Some(t("2024-01-01T00:00:00Z")));
        let fewer = parse_entity(
            &json!({"id": "urn:x:1", "type": "T", "a": 1}),
            &Context::core(),
            t("2024-02-01T00:00:00Z"),
            &Provenance::default(),
        )
        .unwrap();
        let (_, r) = reimport(&old, fewer, t("2024-02-01T00:00:00Z")).unwrap();
        assert_eq!(r.removed, vec![B.to_string()]);
    }
}
