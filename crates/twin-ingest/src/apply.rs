//! How a mapped update changes the stored entity: created when new, else its attributes are replaced, except that
//! an instance equal to the stored one changes nothing (a redelivered message is a no-op) and an observation older
//! than the stored one goes to the entity's history without replacing the current value.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::Value;
use twin_model::{ops, Attribute, Entity, NgsiError};
use twin_store::{ChangeOutcome, EntityChange};

use crate::mapping::Update;

/// What applying an update did, as reported back through the store's write result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The entity was created or at least one attribute changed.
    Written,
    /// Everything the message said was already stored (a duplicate).
    Unchanged,
}

/// The change for one update. Stale instances (observed before the stored value) are handed back in the write
/// result (`{"stale": {attr: [instances]}}`) for [`stale_of`] to read, so the caller can add them to the history.
pub fn change_for(u: Update) -> EntityChange {
    Box::new(move |cur: Option<Entity>| {
        let now = Utc::now();
        let Some(mut e) = cur else {
            let mut e = Entity::new(u.id, String::new());
            e.types = u.types;
            e.dataset = u.dataset;
            let r = ops::append(&mut e, u.attrs, false, now);
            e.created_at = Some(now);
            return Ok(ChangeOutcome::Put {
                entity: e,
                written: r.written,
                removed: r.removed,
                result: Value::Null,
            });
        };
        let mut fresh: BTreeMap<String, Vec<Attribute>> = BTreeMap::new();
        let mut stale: BTreeMap<String, Vec<Attribute>> = BTreeMap::new();
        for (name, instances) in u.attrs {
            for a in instances {
                match e.instance(&name, a.dataset_id.as_deref()) {
                    Some(old) if ops::same_content(old, &a) => {}
                    Some(old) if matches!((old.observed_at, a.observed_at), (Some(o), Some(n)) if n < o) => {
                        stale.entry(name.clone()).or_default().push(a)
                    }
                    _ => fresh.entry(name.clone()).or_default().push(a),
                }
            }
        }
        let mut types_added = false;
        for t in u.types {
            if !e.types.contains(&t) {
                e.types.push(t);
                types_added = true;
            }
        }
        let result = if stale.is_empty() {
            Value::Null
        } else {
            serde_json::json!({ "stale": stale })
        };
        if fresh.is_empty() && !types_added {
            return Ok(ChangeOutcome::Nothing { result });
        }
        let r = ops::append(&mut e, fresh, false, now);
        Ok(ChangeOutcome::Put {
            entity: e,
            written: r.written,
            removed: r.removed,
            result,
        })
    })
}

/// The stale instances a write result carries (see [`change_for`]).
pub fn stale_of(result: &Value) -> Result<BTreeMap<String, Vec<Attribute>>, NgsiError> {
    match result.get("stale") {
        None => Ok(BTreeMap::new()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| NgsiError::internal(format!("stale instances: {e}"))),
    }
}

/// Whether a write result wrote anything.
pub fn applied(r: &twin_store::WriteResult) -> Applied {
    if r.entity.is_some() {
        Applied::Written
    } else {
        Applied::Unchanged
    }
}
