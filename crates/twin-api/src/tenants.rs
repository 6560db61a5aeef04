//! NGSI-LD tenants (`NGSILD-Tenant`), mapped to organisations: a tenant is the data of the organisation of the same
//! name, that is the datasets it owns; a request naming one sees and writes those datasets only.
//!
//! Entities written in a tenant without naming a dataset go to the tenant's own dataset, made on the first create by
//! a member of the organisation (or an administrator), as the specification makes a tenant on its first create
//! operation. Reading a tenant that owns no dataset is a 404 `NonexistentTenant`. Entity ids stay unique across
//! the twin: tenants are views over one store, not separate stores, so the same id cannot live in two tenants.

use axum::http::HeaderMap;
use chrono::Utc;
use twin_model::dataset::Access;
use twin_model::policy::Principal;
use twin_model::{Dataset, ErrorKind};

use crate::error::{ApiError, ApiResult};
use crate::guard::{denied, Guard};
use crate::SharedState;

/// The header that names a tenant.
pub const HEADER: &str = "ngsild-tenant";

/// The tenant a request names: None without the header (or with an empty one), an error for a malformed name.
pub fn from_headers(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get(HEADER) else {
        return Ok(None);
    };
    let t = v
        .to_str()
        .map_err(|_| ApiError::invalid("the NGSILD-Tenant header is not text"))?
        .trim();
    if t.is_empty() {
        return Ok(None);
    }
    check_name(t)?;
    Ok(Some(t.to_string()))
}

/// A tenant name is an organisation's name: 1 to 64 characters of letters, digits, `_ - . :`, starting with a
/// letter or digit.
pub fn check_name(t: &str) -> ApiResult<()> {
    let ok = !t.is_empty()
        && t.len() <= 64
        && t.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "tenant {t:?} is not a valid name: 1 to 64 letters, digits, '_', '-', '.' or ':', starting with a letter \
             or digit"
        )))
    }
}

/// The id of the dataset that holds a tenant's entities written without naming a dataset.
pub fn dataset_id(tenant: &str) -> String {
    format!("urn:ngsi-ld:Dataset:tenant:{tenant}")
}

/// Whether a dataset is part of a tenant: the tenant's organisation owns it.
pub fn holds(tenant: &str, d: &Dataset) -> bool {
    d.owner == tenant
}

/// The record of a tenant's own dataset: owned by the organisation, readable and writable by its members only
/// (the organisation widens it as it likes with `PUT /api/datasets/{id}`).
pub fn new_dataset(tenant: &str) -> Dataset {
    Dataset {
        id: dataset_id(tenant),
        title: format!("Data of tenant {tenant}"),
        description: Some(format!(
            "Entities written through NGSI-LD with NGSILD-Tenant: {tenant} without naming a dataset"
        )),
        owner: tenant.to_string(),
        licence: "LicenseRef-proprietary".into(),
        read: Access::Private,
        write: Access::Private,
        created_at: Some(Utc::now()),
        attributes: Vec::new(),
        usage_policy: None,
        catalog: Default::default(),
    }
}

/// Whether `p` may make tenant `t`: a member of the organisation, or an administrator.
fn may_create(p: &Principal, t: &str) -> bool {
    p.is_admin() || p.organisation.as_deref() == Some(t)
}

/// The dataset a create in the guard's tenant writes to when the request names none: the tenant's own, made now
/// when it is missing (the guard is renewed so that it knows the new dataset). None outside a tenant.
pub async fn write_dataset(state: &SharedState, g: &mut Guard) -> ApiResult<Option<String>> {
    let Some(t) = g.tenant().map(str::to_string) else {
        return Ok(None);
    };
    let id = dataset_id(&t);
    let not_theirs = || {
        ApiError::new(
            ErrorKind::Conflict,
            format!("dataset {id} exists but does not belong to organisation {t}"),
        )
    };
    if let Some(d) = g.dataset(&id) {
        return if holds(&t, d) {
            Ok(Some(id))
        } else {
            Err(not_theirs())
        };
    }
    if !may_create(&g.principal, &t) {
        return Err(denied(
            &g.principal,
            format!("tenant {t} does not exist; a member of organisation {t} or an administrator creates it with its first entity"),
        ));
    }
    match state.store.get_dataset(&id).await? {
        Some(existing) if !holds(&t, &existing) => return Err(not_theirs()),
        Some(_) => {}
        None => {
            let d = new_dataset(&t);
            state.store.put_dataset(d.clone()).await?;
            state
                .store
                .append_audit(
                    &g.principal.label(),
                    "tenant.create",
                    &id,
                    serde_json::json!({"tenant": t, "owner": d.owner, "read": d.read, "write": d.write}),
                )
                .await?;
        }
    }
    *g = g.renewed().await?;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["city", "Helen-Oy", "org:energy.utility_1", "a"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(65);
        for bad in [
            "",
            "-city",
            "city/other",
            "ci ty",
            "kaupunki✓",
            long.as_str(),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn header() {
        let mut h = HeaderMap::new();
        assert_eq!(from_headers(&h).unwrap(), None);
        h.insert(HEADER, "".parse().unwrap());
        assert_eq!(from_headers(&h).unwrap(), None);
        h.insert(HEADER, " utility ".parse().unwrap());
        assert_eq!(from_headers(&h).unwrap().as_deref(), Some("utility"));
        h.insert(HEADER, "a/b".parse().unwrap());
        assert!(from_headers(&h).is_err());
    }

    #[test]
    fn a_tenant_dataset_is_its_organisations_and_private() {
        let d = new_dataset("utility");
        d.validate().unwrap();
        assert!(holds("utility", &d));
        assert!(!holds("city", &d));
        assert_eq!(d.read, Access::Private);
        assert_eq!(d.write, Access::Private);
    }
}
