//! Access policies, enforced in one place: every read of entities goes through a [`Guard`], which limits the store
//! query to the datasets the caller may read, hides the attributes their rules hide, and logs reads of non-public
//! data in the usage log; every write asks it whether the caller may write the datasets concerned.
//!
//! The dataset list is cached per configuration epoch (the store bumps it whenever a dataset changes, on any node),
//! so a policy change applies to the next request. The usage log is written in batches by a background task (one
//! transaction a second at most) so that logged reads cost a channel send, not a write.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use chrono::Utc;
use tokio::sync::mpsc;
use twin_model::dataset::{Access, DEFAULT_DATASET};
use twin_model::policy::{self, AttributeRule, Operation, Principal, UsageDecision};
use twin_model::{Dataset, Entity, ErrorKind, NgsiError};
use twin_store::trust::UsageRecord;
use twin_store::{AttributeInfo, ChangeOutcome, EntityChange, EntityQuery, Store, TypeInfo};

use crate::error::{ApiError, ApiResult};
use crate::{tenants, SharedState};

/// Every dataset by id.
pub type Datasets = Arc<BTreeMap<String, Dataset>>;

/// The datasets as of a configuration epoch.
#[derive(Default)]
pub struct DatasetCache {
    inner: Mutex<Option<(u64, Datasets)>>,
}

impl DatasetCache {
    /// Every dataset by id, read again when the store's configuration epoch moved.
    pub async fn get(&self, store: &dyn Store) -> ApiResult<Arc<BTreeMap<String, Dataset>>> {
        let epoch = store.config_epoch();
        if let Ok(g) = self.inner.lock() {
            if let Some((e, d)) = g.as_ref() {
                if *e == epoch {
                    return Ok(d.clone());
                }
            }
        }
        let mut all: BTreeMap<String, Dataset> = store
            .list_datasets()
            .await?
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
        // entities written without a dataset belong to the default one, which exists even before it is stored
        all.entry(DEFAULT_DATASET.to_string())
            .or_insert_with(Dataset::default_dataset);
        let all = Arc::new(all);
        if let Ok(mut g) = self.inner.lock() {
            *g = Some((epoch, all.clone()));
        }
        Ok(all)
    }
}

/// What one caller may see, computed per request from the datasets and the caller.
#[derive(Debug, Clone)]
pub struct ReadScope {
    /// The datasets whose entities the caller sees; None = all (administrators).
    pub datasets: Option<Vec<String>>,
    /// Per dataset, the attribute rules that hide attributes from the caller.
    pub hidden: HashMap<String, Vec<AttributeRule>>,
    /// The visible datasets whose reads go to the usage log (those not public), with their usage policy checked.
    pub logged: HashSet<String>,
    /// Datasets the caller could read but whose usage policy refuses this read, with why.
    pub refused: Vec<(String, String)>,
}

impl ReadScope {
    /// Whether an entity of `dataset` is visible.
    pub fn sees(&self, dataset: Option<&str>) -> bool {
        let d = dataset.unwrap_or(DEFAULT_DATASET);
        self.datasets
            .as_ref()
            .is_none_or(|ds| ds.iter().any(|x| x == d))
    }
}

/// The caller of a request, its scope and a handle on the usage log.
pub struct Guard {
    pub principal: Principal,
    /// The purpose the caller declared (`NGSILD-Purpose`/`X-Urbantwin-Purpose` header or none).
    pub purpose: Option<String>,
    state: SharedState,
    datasets: Arc<BTreeMap<String, Dataset>>,
    /// Shared with the changes a batch wraps (one per entity).
    scope: Arc<ReadScope>,
    /// The datasets the caller may write (once per request: a batch wraps every change with it).
    writable: Arc<HashSet<String>>,
    /// The NGSI-LD tenant the request names (an organisation: see [`crate::tenants`]).
    tenant: Option<String>,
}

impl FromRequestParts<SharedState> for Guard {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> ApiResult<Guard> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .unwrap_or_else(Principal::anonymous);
        let purpose = parts
            .headers
            .get("x-urbantwin-purpose")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(200).collect::<String>());
        let tenant = tenants::from_headers(&parts.headers)?;
        let g = Guard::in_tenant(state, principal, purpose, tenant).await?;
        // a tenant comes into being with its first create; reading one that does not exist is an error
        if let Some(t) = &g.tenant {
            let reads = matches!(parts.method, Method::GET | Method::HEAD)
                || parts.uri.path().ends_with("/entityOperations/query");
            if reads && !g.datasets.values().any(|d| tenants::holds(t, d)) {
                return Err(ApiError::new(
                    ErrorKind::NonexistentTenant,
                    format!("tenant {t} does not exist (no dataset belongs to organisation {t})"),
                ));
            }
        }
        Ok(g)
    }
}

impl Guard {
    pub async fn new(
        state: &SharedState,
        principal: Principal,
        purpose: Option<String>,
    ) -> ApiResult<Guard> {
        Guard::in_tenant(state, principal, purpose, None).await
    }

    /// As [`Guard::new`], limited to a tenant's datasets when one is named.
    pub async fn in_tenant(
        state: &SharedState,
        principal: Principal,
        purpose: Option<String>,
        tenant: Option<String>,
    ) -> ApiResult<Guard> {
        let datasets = state.datasets.get(state.store.as_ref()).await?;
        let mut scope = scope_of(&principal, purpose.as_deref(), &datasets);
        let in_tenant = |id: &str| {
            tenant
                .as_deref()
                .is_none_or(|t| datasets.get(id).is_some_and(|d| tenants::holds(t, d)))
        };
        if tenant.is_some() {
            let visible = match scope.datasets.take() {
                Some(v) => v,
                None => datasets.keys().cloned().collect(),
            };
            scope.datasets = Some(visible.into_iter().filter(|d| in_tenant(d)).collect());
            scope.logged.retain(|d| in_tenant(d));
        }
        let writable = Arc::new(
            datasets
                .values()
                .filter(|d| policy::may(&principal, d, Operation::Write) && in_tenant(&d.id))
                .map(|d| d.id.clone())
                .collect(),
        );
        Ok(Guard {
            writable,
            principal,
            purpose,
            state: state.clone(),
            datasets,
            scope: Arc::new(scope),
            tenant,
        })
    }

    /// The same caller's guard over the datasets as they are now (after this request made one).
    pub async fn renewed(&self) -> ApiResult<Guard> {
        Guard::in_tenant(
            &self.state,
            self.principal.clone(),
            self.purpose.clone(),
            self.tenant.clone(),
        )
        .await
    }

    /// The NGSI-LD tenant the request names.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    pub fn scope(&self) -> &ReadScope {
        &self.scope
    }

    /// The dataset record (the default dataset's built-in one when it was never stored).
    pub fn dataset(&self, id: &str) -> Option<&Dataset> {
        self.datasets.get(id)
    }

    /// Every dataset record by id (the default dataset's built-in one when it was never stored).
    pub fn datasets(&self) -> &BTreeMap<String, Dataset> {
        &self.datasets
    }

    /// Fails unless the caller may read every one of these datasets (`inputs`: dataset id → entities of it a model
    /// reads), with the same check as the caller's reads of entities; the error names the first it may not read.
    pub fn check_inputs(&self, inputs: &BTreeMap<String, u64>, what: &str) -> ApiResult<()> {
        match inputs.iter().find(|(d, _)| !self.scope.sees(Some(d))) {
            None => Ok(()),
            Some((d, n)) => Err(self.denied(format!(
                "{what} reads {n} entities of dataset {d}, which you may not read"
            ))),
        }
    }

    /// Limits a query to what the caller may see: the visible datasets, less those where an attribute the query
    /// tests (`q`, `attrs`, the geo-query's property) is hidden, so that a filter cannot probe a hidden value.
    pub fn restrict(&self, q: &mut EntityQuery) {
        let mut tested: Vec<String> =
            q.q.as_ref()
                .map(|q| q.attribute_names())
                .unwrap_or_default();
        if let Some(g) = &q.geo {
            tested.push(g.geoproperty.clone());
        }
        if let Some(a) = &q.attrs {
            tested.extend(a.iter().cloned());
        }
        let allowed: Option<Vec<String>> = self.scope.datasets.as_ref().map(|ds| {
            ds.iter()
                .filter(|d| !self.hides_any(d, &tested))
                .cloned()
                .collect()
        });
        q.datasets = match (allowed, q.datasets.take()) {
            (None, asked) => asked,
            (Some(a), None) => Some(a),
            (Some(a), Some(asked)) => Some(asked.into_iter().filter(|d| a.contains(d)).collect()),
        };
    }

    fn hides_any(&self, dataset: &str, expanded: &[String]) -> bool {
        self.scope.hidden.get(dataset).is_some_and(|rules| {
            rules
                .iter()
                .any(|r| expanded.iter().any(|e| r.matches(e, short(e))))
        })
    }

    /// Whether the caller sees this entity at all.
    pub fn sees(&self, e: &Entity) -> bool {
        self.scope.sees(e.dataset.as_deref())
    }

    /// Removes the attributes the caller may not see.
    pub fn redact(&self, e: &mut Entity) {
        let d = e.dataset.as_deref().unwrap_or(DEFAULT_DATASET);
        if let Some(rules) = self.scope.hidden.get(d) {
            e.attrs
                .retain(|name, _| !rules.iter().any(|r| r.matches(name, short(name))));
        }
    }

    /// Redacts the entities and logs the read of those in logged datasets.
    pub fn release(&self, entities: &mut [Entity], operation: &str) {
        for e in entities.iter_mut() {
            self.redact(e);
        }
        self.log(entities.iter().map(|e| e.dataset.as_deref()), operation);
    }

    /// Logs a read of entities of these datasets (one record per logged dataset with its count).
    pub fn log<'a>(&self, datasets: impl Iterator<Item = Option<&'a str>>, operation: &str) {
        if self.scope.logged.is_empty() {
            return;
        }
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for d in datasets {
            *counts.entry(d.unwrap_or(DEFAULT_DATASET)).or_default() += 1;
        }
        self.log_counts(counts, operation, None);
    }

    /// Logs a read of `n` entities of each dataset (those of logged datasets), e.g. a model's inputs; `detail` says
    /// what read them.
    pub fn log_counts<'a>(
        &self,
        counts: impl IntoIterator<Item = (&'a str, u64)>,
        operation: &str,
        detail: Option<String>,
    ) {
        let at = Utc::now();
        for (d, n) in counts {
            if !self.scope.logged.contains(d) || n == 0 {
                continue;
            }
            self.state.usage.record(UsageRecord {
                id: 0,
                at,
                dataset: d.to_string(),
                principal: principal_label(&self.principal),
                operation: operation.to_string(),
                entities: n,
                purpose: self.purpose.clone(),
                detail: detail.clone(),
            });
        }
    }

    /// Whether the caller may write entities of `dataset`.
    pub fn may_write(&self, dataset: Option<&str>) -> bool {
        self.writable.contains(dataset.unwrap_or(DEFAULT_DATASET))
    }

    /// Fails unless the caller may write entities of `dataset`: 401 when signing in could help, else 403.
    pub fn check_write(&self, dataset: Option<&str>) -> ApiResult<()> {
        if self.may_write(dataset) {
            return Ok(());
        }
        let d = dataset.unwrap_or(DEFAULT_DATASET);
        Err(self.denied(format!("writing to dataset {d} is not allowed")))
    }

    /// The datasets the caller may write, for checks inside store transactions.
    pub fn writable(&self) -> Arc<HashSet<String>> {
        self.writable.clone()
    }

    /// Wraps a store change so that it applies only where the caller may write: the entity as it is (an entity
    /// the caller cannot even read is reported as missing, so its existence does not leak) and the entity as the
    /// change leaves it (a create, or a move to another dataset). Every entity write goes through this.
    pub fn guard_change(&self, inner: EntityChange) -> EntityChange {
        let writable = self.writable();
        let scope = self.scope.clone();
        let anonymous = self.principal.is_anonymous();
        let refuse = move |d: &str| {
            let kind = if anonymous {
                ErrorKind::Unauthenticated
            } else {
                ErrorKind::AccessDenied
            };
            NgsiError::new(kind, format!("writing to dataset {d} is not allowed"))
        };
        Box::new(move |cur: Option<Entity>| {
            if let Some(e) = &cur {
                let d = e.dataset.as_deref().unwrap_or(DEFAULT_DATASET);
                if !writable.contains(d) {
                    if !scope.sees(Some(d)) {
                        return Err(NgsiError::not_found("entity does not exist"));
                    }
                    return Err(refuse(d));
                }
            }
            let out = inner(cur)?;
            if let ChangeOutcome::Put { entity, .. } = &out {
                let d = entity.dataset.as_deref().unwrap_or(DEFAULT_DATASET);
                if !writable.contains(d) {
                    return Err(refuse(d));
                }
            }
            Ok(out)
        })
    }

    /// 401 for an anonymous caller (signing in may help), 403 for a signed-in one.
    pub fn denied(&self, detail: impl Into<String>) -> ApiError {
        denied(&self.principal, detail)
    }

    /// Fails unless the caller is an administrator.
    pub fn require_admin(&self) -> ApiResult<()> {
        if self.principal.is_admin() {
            Ok(())
        } else {
            Err(self.denied("this needs an administrator"))
        }
    }

    /// Fails unless the caller manages the dataset (its owner or an administrator).
    pub fn require_manager(&self, d: &Dataset) -> ApiResult<()> {
        if policy::manages(&self.principal, d) {
            Ok(())
        } else {
            Err(self.denied(format!(
                "only the owner of {} or an administrator may do this",
                d.id
            )))
        }
    }
}

/// 401 for an anonymous caller, 403 for a signed-in one.
pub fn denied(p: &Principal, detail: impl Into<String>) -> ApiError {
    if p.is_anonymous() {
        ApiError::new(ErrorKind::Unauthenticated, detail)
    } else {
        ApiError::new(ErrorKind::AccessDenied, detail)
    }
}

/// How the usage log names a caller.
pub fn principal_label(p: &Principal) -> String {
    match &p.method {
        policy::AuthMethod::ApiKey { key_id } => {
            format!("{} (key {key_id})", p.label())
        }
        _ => p.label(),
    }
}

/// The box around two lon/lat boxes (west, south, east, north).
pub fn union_bbox(a: Option<[f64; 4]>, b: [f64; 4]) -> [f64; 4] {
    match a {
        None => b,
        Some(o) => [
            o[0].min(b[0]),
            o[1].min(b[1]),
            o[2].max(b[2]),
            o[3].max(b[3]),
        ],
    }
}

/// The last segment of an expanded name (`…/location` → `location`), which rules written short match.
fn short(expanded: &str) -> &str {
    expanded
        .rsplit(['/', '#'])
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(expanded)
}

/// The scope of a caller over the datasets.
pub fn scope_of(
    p: &Principal,
    purpose: Option<&str>,
    datasets: &BTreeMap<String, Dataset>,
) -> ReadScope {
    let now = Utc::now();
    let mut visible = Vec::new();
    let mut hidden = HashMap::new();
    let mut logged = HashSet::new();
    let mut refused = Vec::new();
    let mut all = true;
    for d in datasets.values() {
        if !policy::may(p, d, Operation::Read) {
            all = false;
            continue;
        }
        let manages = policy::manages(p, d);
        if let UsageDecision::Denied(why) = policy::check_dataset_usage(p, d, "read", purpose, now)
        {
            all = false;
            refused.push((d.id.clone(), why));
            continue;
        }
        let rules: Vec<AttributeRule> = policy::hidden_attributes(p, d)
            .into_iter()
            .cloned()
            .collect();
        if !rules.is_empty() {
            hidden.insert(d.id.clone(), rules);
        }
        if d.read != Access::Public && !manages {
            logged.insert(d.id.clone());
        }
        visible.push(d.id.clone());
    }
    ReadScope {
        // administrators see every dataset, including entities of datasets with no record
        datasets: if all && p.is_admin() {
            None
        } else {
            Some(visible)
        },
        hidden,
        logged,
        refused,
    }
}

/// The usage log's writer: reads are recorded through a channel and written in batches by a background task.
pub struct UsageLog {
    tx: Mutex<Option<mpsc::UnboundedSender<UsageMsg>>>,
    store: Arc<dyn Store>,
}

enum UsageMsg {
    Record(UsageRecord),
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl UsageLog {
    pub fn new(store: Arc<dyn Store>) -> UsageLog {
        UsageLog {
            tx: Mutex::new(None),
            store,
        }
    }

    fn send(&self, m: UsageMsg) {
        let Ok(mut g) = self.tx.lock() else {
            return;
        };
        let tx = g.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_usage(self.store.clone(), rx));
            tx
        });
        if tx.send(m).is_err() {
            tracing::error!("the usage log writer stopped: a read was not logged");
        }
    }

    /// Queues a record (the writer task starts with the first one).
    pub fn record(&self, r: UsageRecord) {
        self.send(UsageMsg::Record(r));
    }

    /// Returns once every record queued before the call is in the store (tests, shutdown).
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(UsageMsg::Flush(tx));
        let _ = rx.await;
    }
}

/// How often the usage log is written at most: each write makes every reader's page cache stale (SQLite drops it
/// when another connection committed), so writing on every logged read made reads of logged data several times
/// slower under load; once a second costs a read a channel send, and a crash may lose that second's records.
const USAGE_INTERVAL: Duration = Duration::from_secs(1);

/// The most records one write takes.
const USAGE_BATCH: usize = 5000;

fn take(
    m: UsageMsg,
    batch: &mut Vec<UsageRecord>,
    waiting: &mut Vec<tokio::sync::oneshot::Sender<()>>,
) {
    match m {
        UsageMsg::Record(r) => batch.push(r),
        UsageMsg::Flush(t) => waiting.push(t),
    }
}

async fn write_usage(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<UsageMsg>) {
    let mut batch = Vec::new();
    let mut waiting = Vec::new();
    let mut last_write = tokio::time::Instant::now() - USAGE_INTERVAL;
    let mut open = true;
    while open {
        let Some(m) = rx.recv().await else {
            break;
        };
        take(m, &mut batch, &mut waiting);
        // gather until a second since the last write, a full batch, or someone waiting for a flush
        let deadline = last_write + USAGE_INTERVAL;
        while batch.len() < USAGE_BATCH && waiting.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => take(m, &mut batch, &mut waiting),
                Ok(None) => {
                    open = false;
                    break;
                }
                Err(_) => break,
            }
        }
        while batch.len() < USAGE_BATCH {
            match rx.try_recv() {
                Ok(m) => take(m, &mut batch, &mut waiting),
                Err(_) => break,
            }
        }
        let mut wait = Duration::from_millis(100);
        while !batch.is_empty() {
            match store.record_usage(batch.clone()).await {
                Ok(()) => batch.clear(),
                Err(e) => {
                    tracing::error!(error = %e, records = batch.len(), "cannot write the usage log; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
        last_write = tokio::time::Instant::now();
        for t in waiting.drain(..) {
            let _ = t.send(());
        }
    }
}

impl Guard {
    /// The datasets to ask the store about in groups: those without hidden attributes together, and each with
    /// hidden attributes alone (so its hidden names can be taken out of what it contributes).
    fn dataset_groups(&self) -> Vec<(Option<Vec<String>>, Vec<AttributeRule>)> {
        let Some(visible) = &self.scope.datasets else {
            return vec![(None, vec![])];
        };
        let (plain, ruled): (Vec<&String>, Vec<&String>) = visible
            .iter()
            .partition(|d| !self.scope.hidden.contains_key(*d));
        let mut groups = vec![(Some(plain.into_iter().cloned().collect()), vec![])];
        for d in ruled {
            groups.push((Some(vec![d.clone()]), self.scope.hidden[d].clone()));
        }
        groups
    }

    /// The entity types of the entities the caller sees, with the attribute names it may see.
    pub async fn types(&self) -> ApiResult<Vec<TypeInfo>> {
        let mut merged: BTreeMap<String, TypeInfo> = BTreeMap::new();
        for (datasets, rules) in self.dataset_groups() {
            if datasets.as_ref().is_some_and(|d| d.is_empty()) {
                continue;
            }
            for mut t in self.state.store.types(datasets.as_deref()).await? {
                t.attributes
                    .retain(|a, _| !rules.iter().any(|r| r.matches(a, short(a))));
                match merged.get_mut(&t.type_name) {
                    None => {
                        merged.insert(t.type_name.clone(), t);
                    }
                    Some(m) => {
                        m.entity_count += t.entity_count;
                        for (a, kinds) in t.attributes {
                            let k = m.attributes.entry(a).or_default();
                            for kind in kinds {
                                if !k.contains(&kind) {
                                    k.push(kind);
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(merged.into_values().collect())
    }

    /// The attributes of the entities the caller sees, less those hidden from it.
    pub async fn attributes(&self) -> ApiResult<Vec<AttributeInfo>> {
        let mut merged: BTreeMap<String, AttributeInfo> = BTreeMap::new();
        for (datasets, rules) in self.dataset_groups() {
            if datasets.as_ref().is_some_and(|d| d.is_empty()) {
                continue;
            }
            for a in self.state.store.attributes(datasets.as_deref()).await? {
                if rules.iter().any(|r| r.matches(&a.name, short(&a.name))) {
                    continue;
                }
                match merged.get_mut(&a.name) {
                    None => {
                        merged.insert(a.name.clone(), a);
                    }
                    Some(m) => {
                        m.attribute_count += a.attribute_count;
                        for k in a.kinds {
                            if !m.kinds.contains(&k) {
                                m.kinds.push(k);
                            }
                        }
                        for t in a.type_names {
                            if !m.type_names.contains(&t) {
                                m.type_names.push(t);
                            }
                        }
                    }
                }
            }
        }
        Ok(merged.into_values().collect())
    }

    /// The lon/lat box around the geometries of the caller's entities of a type.
    pub async fn type_extent(&self, type_name: &str) -> ApiResult<Option<[f64; 4]>> {
        // datasets whose locations are hidden from the caller do not widen the box
        let location = [twin_model::entity::iri::LOCATION.to_string()];
        let datasets: Option<Vec<String>> = self.scope.datasets.as_ref().map(|ds| {
            ds.iter()
                .filter(|d| !self.hides_any(d, &location))
                .cloned()
                .collect()
        });
        if datasets.as_ref().is_some_and(|d| d.is_empty()) {
            return Ok(None);
        }
        Ok(self
            .state
            .store
            .type_extent(type_name, datasets.as_deref())
            .await?)
    }
}

impl Guard {
    /// Whether reads of these results need to know each entity's dataset (to hide attributes or log the read).
    pub fn needs_datasets(&self) -> bool {
        !self.scope.hidden.is_empty() || !self.scope.logged.is_empty()
    }

    /// The dataset of each of these entities (those with no current state belong to the default dataset).
    pub async fn datasets_of(
        &self,
        ids: Vec<String>,
    ) -> ApiResult<HashMap<String, Option<String>>> {
        if ids.is_empty() || !self.needs_datasets() {
            return Ok(HashMap::new());
        }
        let n = ids.len();
        let q = EntityQuery {
            ids: Some(ids),
            limit: n,
            ..Default::default()
        };
        Ok(self
            .state
            .store
            .query(&q)
            .await?
            .entities
            .into_iter()
            .map(|e| (e.id, e.dataset))
            .collect())
    }

    /// Removes from an entity's attribute map (temporal results) what the caller may not see: raw values of
    /// hidden attributes, or, for aggregates, hidden attributes whose rule does not open their aggregates to it.
    pub fn redact_map<V>(
        &self,
        dataset: Option<&str>,
        attrs: &mut BTreeMap<String, V>,
        aggregates: bool,
    ) {
        let d = dataset.unwrap_or(DEFAULT_DATASET);
        let (Some(rules), Some(ds)) = (self.scope.hidden.get(d), self.datasets.get(d)) else {
            return;
        };
        attrs.retain(|name, _| {
            !rules.iter().any(|r| {
                r.matches(name, short(name))
                    && !(aggregates && policy::may_aggregate(&self.principal, ds, r))
            })
        });
    }
}

impl Guard {
    async fn history_in(&self, id: &str, datasets: Option<Vec<String>>) -> ApiResult<bool> {
        let q = twin_store::TemporalQuery {
            entities: EntityQuery {
                ids: Some(vec![id.to_string()]),
                datasets,
                limit: 1,
                ..Default::default()
            },
            attrs: Some(vec![]),
            instance_limit: 1,
            ..Default::default()
        };
        Ok(!self.state.store.temporal_query(&q).await?.is_empty())
    }

    /// Fails unless the caller may write the history of entity `id`: the dataset of its history (which follows
    /// the entity's), or, for a history not yet started, the dataset a new one starts in (the entity's, else the
    /// default dataset). A history the caller cannot read is reported as missing.
    pub async fn check_history_write(&self, id: &str) -> ApiResult<()> {
        let writable: Vec<String> = self.writable().iter().cloned().collect();
        if self.history_in(id, Some(writable)).await? {
            return Ok(());
        }
        if self.history_in(id, None).await? {
            return Err(if self.history_in(id, self.scope.datasets.clone()).await? {
                self.denied(format!("writing the history of {id} is not allowed"))
            } else {
                ApiError::not_found(format!("temporal entity {id} does not exist"))
            });
        }
        let dataset = self.state.store.get(id).await?.and_then(|e| e.dataset);
        self.check_write(dataset.as_deref())
    }
}

impl Guard {
    /// A number that tells scopes apart, for caches of what a scope sees (equal scopes, equal keys).
    pub fn scope_key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.scope.datasets.hash(&mut h);
        let mut hidden: Vec<(&String, Vec<&str>)> = self
            .scope
            .hidden
            .iter()
            .map(|(d, rules)| (d, rules.iter().map(|r| r.attribute.as_str()).collect()))
            .collect();
        hidden.sort();
        hidden.hash(&mut h);
        h.finish()
    }
}
