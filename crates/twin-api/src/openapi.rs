//! The OpenAPI 3.0.3 description of the whole HTTP API, served at `GET /openapi.json`.
//!
//! One table, [`OPERATIONS`], lists every (method, path) the router answers; the document is built from it, and
//! `tests/openapi.rs` checks the table against the running router both ways (every documented operation is routed;
//! every route is documented). Request bodies have schemas precise enough for property-based testers such as
//! schemathesis to produce input the handlers get past their first checks with.

use serde_json::{json, Map, Value};

/// What an operation takes in its request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    /// A JSON (or JSON-LD) body of the named component schema; `true` = required.
    Json(&'static str, bool),
}

/// One operation of the API.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    /// The path as OpenAPI writes it (`{id}` for parameters).
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Query parameters by name (their schemas come from [`param_schema`]).
    pub query: &'static [&'static str],
    pub body: Body,
    /// Success status codes.
    pub ok: &'static [u16],
}

const NONE: &[&str] = &[];
const LOCAL: &[&str] = &["local"];
const ENTITY_QUERY: &[&str] = crate::params::QUERY_PARAMS;
const TEMPORAL_QUERY: &[&str] = crate::temporal::TEMPORAL_PARAMS;
const ACCESS: &[&str] = &[
    "mode",
    "minutes",
    "profile",
    "speedKmh",
    "crossingS",
    "k",
    "categories",
];

macro_rules! op {
    ($m:literal, $p:literal, $tag:literal, $s:literal, $q:expr, $b:expr, $ok:expr) => {
        Operation {
            method: $m,
            path: $p,
            tag: $tag,
            summary: $s,
            query: $q,
            body: $b,
            ok: $ok,
        }
    };
}

use Body::{Json, None as NoBody};

/// The operations that answer 401 (anonymous) and 403 (signed in, not allowed) besides the datasets' filtering of
/// reads: scenario writes need an account ([`crate::scenarios`]); a model's results need read access to each of its
/// input datasets. (Every operation but OGC's and the tiles' documents both answers: wrong credentials are a 401
/// anywhere, and NGSI-LD writes depend on the datasets' write policies.)
pub const AUTH_ERRORS: &[(&str, &str)] = &[
    ("post", "/api/consultations"),
    ("post", "/api/consultations/{consultationId}/comments"),
    ("post", "/api/moderation/actions"),
    ("get", "/api/moderation/queue"),
    ("delete", "/api/me"),
    ("post", "/api/scenarios"),
    ("put", "/api/scenarios/{scenarioId}"),
    ("delete", "/api/scenarios/{scenarioId}"),
    ("post", "/api/scenarios/{scenarioId}/runs"),
    ("delete", "/api/scenarios/{scenarioId}/runs/{runId}"),
    ("get", "/api/scenarios/baseline"),
    ("get", "/api/scenarios/baseline/links"),
    ("get", "/api/scenarios/baseline/links.geojson"),
    ("get", "/api/scenarios/{scenarioId}/runs/{runId}/links"),
    (
        "get",
        "/api/scenarios/{scenarioId}/runs/{runId}/links.geojson",
    ),
    ("get", "/api/scenarios/{scenarioId}/air"),
    ("get", "/api/scenarios/{scenarioId}/air.geojson"),
    ("get", "/api/scenarios/{scenarioId}/noise"),
    ("get", "/api/scenarios/{scenarioId}/noise.geojson"),
    ("get", "/api/scenarios/{scenarioId}/air/grid"),
];

/// The operations whose success answer has a component schema: (method, path, schema).
pub const ANSWERS: &[(&str, &str, &str)] = &[
    ("get", "/api/scenarios/{scenarioId}", "ScenarioResource"),
    ("post", "/api/scenarios/{scenarioId}/runs", "Run"),
    ("get", "/api/scenarios/{scenarioId}/runs/{runId}", "Run"),
    ("delete", "/api/scenarios/{scenarioId}/runs/{runId}", "Run"),
    ("get", "/api/access", "AccessSummary"),
];

/// Every operation the router serves (the web app's files, served as the fallback, aside).
pub const OPERATIONS: &[Operation] = &[
    // --- NGSI-LD
    op!(
        "get",
        "/ngsi-ld/v1/entities",
        "NGSI-LD entities",
        "Query entities",
        ENTITY_QUERY,
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/ngsi-ld/v1/entities",
        "NGSI-LD entities",
        "Create an entity",
        LOCAL,
        Json("Entity", true),
        &[201]
    ),
    op!(
        "get",
        "/ngsi-ld/v1/entities/{entityId}",
        "NGSI-LD entities",
        "Retrieve an entity",
        &[
            "attrs",
            "pick",
            "omit",
            "options",
            "format",
            "lang",
            "geometryProperty",
            "local",
            "type",
            "datasetId",
            "join",
            "joinLevel",
            "containedBy",
            "entityMap",
            "expandValues"
        ],
        NoBody,
        &[200]
    ),
    op!(
        "delete",
        "/ngsi-ld/v1/entities/{entityId}",
        "NGSI-LD entities",
        "Delete an entity",
        &["type", "local"],
        NoBody,
        &[204]
    ),
    op!(
        "put",
        "/ngsi-ld/v1/entities/{entityId}",
        "NGSI-LD entities",
        "Replace an entity",
        LOCAL,
        Json("EntityFragment", true),
        &[204]
    ),
    op!(
        "patch",
        "/ngsi-ld/v1/entities/{entityId}",
        "NGSI-LD entities",
        "Merge into an entity",
        &["local", "options", "format", "type"],
        Json("EntityFragment", true),
        &[204]
    ),
    op!(
        "patch",
        "/ngsi-ld/v1/entities/{entityId}/attrs",
        "NGSI-LD entities",
        "Update attributes",
        &["options", "local", "type"],
        Json("EntityFragment", true),
        &[204, 207]
    ),
    op!(
        "post",
        "/ngsi-ld/v1/entities/{entityId}/attrs",
        "NGSI-LD entities",
        "Append attributes",
        &["options", "local", "type"],
        Json("EntityFragment", true),
        &[204, 207]
    ),
    op!(
        "patch",
        "/ngsi-ld/v1/entities/{entityId}/attrs/{attrId}",
        "NGSI-LD entities",
        "Partially update an attribute",
        &["local", "type"],
        Json("Attribute", true),
        &[204]
    ),
    op!(
        "put",
        "/ngsi-ld/v1/entities/{entityId}/attrs/{attrId}",
        "NGSI-LD entities",
        "Replace an attribute",
        &["local", "type"],
        Json("Attribute", true),
        &[204]
    ),
    op!(
        "delete",
        "/ngsi-ld/v1/entities/{entityId}/attrs/{attrId}",
        "NGSI-LD entities",
        "Delete an attribute",
        &["datasetId", "deleteAll", "local", "type"],
        NoBody,
        &[204]
    ),
    op!(
        "post",
        "/ngsi-ld/v1/entityOperations/create",
        "NGSI-LD batch operations",
        "Create entities",
        LOCAL,
        Json("EntityList", true),
        &[201, 207]
    ),
    op!(
        "post",
        "/ngsi-ld/v1/entityOperations/upsert",
        "NGSI-LD batch operations",
        "Create or update entities",
        &["options", "local"],
        Json("EntityList", true),
        &[201, 204, 207]
    ),
    op!(
        "post",
        "/ngsi-ld/v1/entityOperations/update",
        "NGSI-LD batch operations",
        "Update entities",
        &["options", "local"],
        Json("EntityList", true),
        &[204, 207]
    ),
    op!(
        "post",
        "/ngsi-ld/v1/entityOperations/merge",
        "NGSI-LD batch operations",
        "Merge into entities",
        LOCAL,
        Json("EntityList", true),
        &[204, 207]
    ),
    op!(
        "post",
        "/ngsi-ld/v1/entityOperations/delete",
        "NGSI-LD batch operations",
        "Delete entities",
        LOCAL,
        Json("IdList", true),
        &[204, 207]
    ),
    op!(
        "post",
        "/ngsi-ld/v1/entityOperations/query",
        "NGSI-LD batch operations",
        "Query entities (POST)",
        &["limit", "offset", "count", "options", "format", "local", "lang"],
        Json("Query", true),
        &[200]
    ),
    op!(
        "get",
        "/ngsi-ld/v1/types",
        "NGSI-LD types and attributes",
        "Entity types",
        &["details", "local"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/ngsi-ld/v1/types/{type}",
        "NGSI-LD types and attributes",
        "One entity type",
        LOCAL,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/ngsi-ld/v1/attributes",
        "NGSI-LD types and attributes",
        "Attributes",
        &["details", "local"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/ngsi-ld/v1/attributes/{attrId}",
        "NGSI-LD types and attributes",
        "One attribute",
        LOCAL,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/ngsi-ld/v1/temporal/entities",
        "NGSI-LD temporal",
        "Query temporal evolution",
        TEMPORAL_QUERY,
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/ngsi-ld/v1/temporal/entities",
        "NGSI-LD temporal",
        "Create or append temporal instances",
        LOCAL,
        Json("TemporalEntity", true),
        &[201, 204]
    ),
    op!(
        "get",
        "/ngsi-ld/v1/temporal/entities/{entityId}",
        "NGSI-LD temporal",
        "Temporal evolution of an entity",
        TEMPORAL_QUERY,
        NoBody,
        &[200]
    ),
    op!(
        "delete",
        "/ngsi-ld/v1/temporal/entities/{entityId}",
        "NGSI-LD temporal",
        "Delete a temporal entity",
        LOCAL,
        NoBody,
        &[204]
    ),
    op!(
        "post",
        "/ngsi-ld/v1/temporal/entities/{entityId}/attrs",
        "NGSI-LD temporal",
        "Append temporal instances",
        LOCAL,
        Json("TemporalFragment", true),
        &[204]
    ),
    op!(
        "delete",
        "/ngsi-ld/v1/temporal/entities/{entityId}/attrs/{attrId}",
        "NGSI-LD temporal",
        "Delete an attribute's history",
        &["datasetId", "deleteAll", "local"],
        NoBody,
        &[204]
    ),
    op!(
        "patch",
        "/ngsi-ld/v1/temporal/entities/{entityId}/attrs/{attrId}/{instanceId}",
        "NGSI-LD temporal",
        "Modify an attribute instance",
        LOCAL,
        Json("EntityFragment", true),
        &[204]
    ),
    op!(
        "delete",
        "/ngsi-ld/v1/temporal/entities/{entityId}/attrs/{attrId}/{instanceId}",
        "NGSI-LD temporal",
        "Delete an attribute instance",
        LOCAL,
        NoBody,
        &[204]
    ),
    op!(
        "post",
        "/ngsi-ld/v1/temporalEntityOperations/query",
        "NGSI-LD temporal",
        "Query temporal evolution (POST)",
        &["limit", "offset", "count", "options", "format", "lastN", "local"],
        Json("Query", true),
        &[200]
    ),
    op!(
        "get",
        "/ngsi-ld/v1/subscriptions",
        "NGSI-LD subscriptions",
        "Subscriptions",
        &["limit", "offset", "count", "options"],
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/ngsi-ld/v1/subscriptions",
        "NGSI-LD subscriptions",
        "Create a subscription",
        NONE,
        Json("Subscription", true),
        &[201]
    ),
    op!(
        "get",
        "/ngsi-ld/v1/subscriptions/{subscriptionId}",
        "NGSI-LD subscriptions",
        "One subscription",
        &["options"],
        NoBody,
        &[200]
    ),
    op!(
        "patch",
        "/ngsi-ld/v1/subscriptions/{subscriptionId}",
        "NGSI-LD subscriptions",
        "Update a subscription",
        NONE,
        Json("SubscriptionFragment", true),
        &[204]
    ),
    op!(
        "delete",
        "/ngsi-ld/v1/subscriptions/{subscriptionId}",
        "NGSI-LD subscriptions",
        "Delete a subscription",
        NONE,
        NoBody,
        &[204]
    ),
    op!(
        "get",
        "/ngsi-ld/v1/jsonldContexts",
        "NGSI-LD contexts",
        "Hosted @contexts",
        &["details", "kind"],
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/ngsi-ld/v1/jsonldContexts",
        "NGSI-LD contexts",
        "Host an @context",
        NONE,
        Json("ContextDocument", true),
        &[201]
    ),
    op!(
        "get",
        "/ngsi-ld/v1/jsonldContexts/{contextId}",
        "NGSI-LD contexts",
        "One hosted @context",
        &["details"],
        NoBody,
        &[200]
    ),
    op!(
        "delete",
        "/ngsi-ld/v1/jsonldContexts/{contextId}",
        "NGSI-LD contexts",
        "Delete or reload an @context",
        &["reload"],
        NoBody,
        &[204]
    ),
    // --- /api
    op!(
        "get",
        "/api/datasets",
        "Datasets",
        "Datasets",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/api/datasets",
        "Datasets",
        "Create a dataset",
        NONE,
        Json("Dataset", true),
        &[201]
    ),
    op!(
        "get",
        "/api/datasets/{datasetId}",
        "Datasets",
        "One dataset",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "put",
        "/api/datasets/{datasetId}",
        "Datasets",
        "Replace a dataset",
        NONE,
        Json("Dataset", true),
        &[204]
    ),
    op!(
        "get",
        "/api/scenarios",
        "Scenarios",
        "Scenarios",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/api/scenarios",
        "Scenarios",
        "Create a scenario",
        NONE,
        Json("Scenario", true),
        &[201]
    ),
    op!(
        "get",
        "/api/scenarios/baseline",
        "Scenarios",
        "The traffic baseline",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/scenarios/baseline/links",
        "Scenarios",
        "The baseline's per-link values",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/scenarios/baseline/links.geojson",
        "Scenarios",
        "The baseline's links as GeoJSON",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/scenarios/{scenarioId}",
        "Scenarios",
        "One scenario",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "put",
        "/api/scenarios/{scenarioId}",
        "Scenarios",
        "Replace a scenario",
        NONE,
        Json("Scenario", true),
        &[204]
    ),
    op!(
        "delete",
        "/api/scenarios/{scenarioId}",
        "Scenarios",
        "Delete a scenario",
        NONE,
        NoBody,
        &[204]
    ),
    op!(
        "get",
        "/api/scenarios/{scenarioId}/runs",
        "Scenarios",
        "A scenario's runs",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/api/scenarios/{scenarioId}/runs",
        "Scenarios",
        "Run a scenario",
        NONE,
        Json("RunRequest", false),
        &[202]
    ),
    op!(
        "get",
        "/api/scenarios/{scenarioId}/runs/{runId}",
        "Scenarios",
        "One run",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "delete",
        "/api/scenarios/{scenarioId}/runs/{runId}",
        "Scenarios",
        "Cancel a run",
        NONE,
        NoBody,
        &[202]
    ),
    op!(
        "get",
        "/api/scenarios/{scenarioId}/runs/{runId}/links",
        "Scenarios",
        "A run's per-link results",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/scenarios/{scenarioId}/runs/{runId}/links.geojson",
        "Scenarios",
        "A run's links as GeoJSON",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/scenarios/{scenarioId}/air",
        "Air quality and noise",
        "A scenario's air quality",
        &["run", "homes"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/scenarios/{scenarioId}/air.geojson",
        "Air quality and noise",
        "A scenario's air quality as GeoJSON",
        &["run"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/scenarios/{scenarioId}/noise",
        "Air quality and noise",
        "A scenario's noise",
        &["run", "homes"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/scenarios/{scenarioId}/noise.geojson",
        "Air quality and noise",
        "A scenario's noise as GeoJSON",
        &["run"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/scenarios/{scenarioId}/air/grid",
        "Air quality and noise",
        "A concentration grid",
        &[
            "run",
            "cellM",
            "windFromDeg",
            "windMs",
            "stability",
            "terrain",
            "format"
        ],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/access",
        "15-minute city",
        "Access summary",
        ACCESS,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/access/homes",
        "15-minute city",
        "Access per home",
        ACCESS,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/access/isochrone",
        "15-minute city",
        "Isochrones from a point",
        &[
            "mode",
            "minutes",
            "profile",
            "speedKmh",
            "crossingS",
            "k",
            "categories",
            "lon",
            "lat"
        ],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/access/areas",
        "15-minute city",
        "Access by area",
        &[
            "mode",
            "minutes",
            "profile",
            "speedKmh",
            "crossingS",
            "k",
            "categories",
            "by",
            "cellM"
        ],
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/api/access/scenario",
        "15-minute city",
        "Access with added places",
        ACCESS,
        Json("AccessScenario", true),
        &[200]
    ),
    op!(
        "get",
        "/api/events",
        "Live",
        "Server-sent events of the twin's writes",
        &["type", "id", "attrs", "format", "q"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/ingest",
        "Ingestion",
        "Ingestion counters",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/ingest/dead-letters",
        "Ingestion",
        "Dead letters",
        &["topic", "before", "limit"],
        NoBody,
        &[200]
    ),
    op!(
        "delete",
        "/api/ingest/dead-letters",
        "Ingestion",
        "Delete every dead letter",
        NONE,
        NoBody,
        &[200, 204]
    ),
    op!(
        "delete",
        "/api/ingest/dead-letters/{letterId}",
        "Ingestion",
        "Delete a dead letter",
        NONE,
        NoBody,
        &[204]
    ),
    // --- accounts, keys, usage and audit (trust)
    op!(
        "post",
        "/api/auth/register",
        "Accounts",
        "Sign up (a citizen account) and sign in",
        NONE,
        Json("Credentials", true),
        &[201]
    ),
    op!(
        "post",
        "/api/auth/login",
        "Accounts",
        "Sign in: a session cookie and its CSRF token",
        NONE,
        Json("Credentials", true),
        &[200]
    ),
    op!(
        "post",
        "/api/auth/logout",
        "Accounts",
        "Sign out",
        NONE,
        NoBody,
        &[204]
    ),
    op!(
        "get",
        "/api/auth/me",
        "Accounts",
        "Who the request is made as",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/accounts",
        "Accounts",
        "Accounts (administrators)",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/api/accounts",
        "Accounts",
        "Create an account (administrators)",
        NONE,
        Json("Account", true),
        &[201]
    ),
    op!(
        "get",
        "/api/accounts/{accountId}",
        "Accounts",
        "One account (itself or administrators)",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "patch",
        "/api/accounts/{accountId}",
        "Accounts",
        "Change an account",
        NONE,
        Json("Account", true),
        &[204]
    ),
    op!(
        "delete",
        "/api/accounts/{accountId}",
        "Accounts",
        "Delete an account with its sessions and keys",
        NONE,
        NoBody,
        &[204]
    ),
    op!(
        "get",
        "/api/keys",
        "Accounts",
        "The caller's API keys",
        &["account"],
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/api/keys",
        "Accounts",
        "Make an API key (its secret is shown once)",
        NONE,
        Json("KeyRequest", true),
        &[201]
    ),
    op!(
        "delete",
        "/api/keys/{keyId}",
        "Accounts",
        "Revoke an API key",
        NONE,
        NoBody,
        &[204]
    ),
    op!(
        "get",
        "/api/datasets/{datasetId}/usage",
        "Datasets",
        "Who read a dataset's data (its owner and administrators)",
        &["principal", "since", "until", "before", "limit"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/datasets/{datasetId}/usage/summary",
        "Datasets",
        "A dataset's use by reader and operation",
        &["since"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/audit",
        "Accounts",
        "The audit log (administrators)",
        &["after", "limit"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/audit/verify",
        "Accounts",
        "Check the audit log's hash chain (administrators)",
        NONE,
        NoBody,
        &[200, 409]
    ),
    // --- the DCAT-AP catalogue
    op!(
        "get",
        "/catalog",
        "Catalogue",
        "The datasets as DCAT-AP (JSON-LD, or Turtle)",
        &["f"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/catalog.ttl",
        "Catalogue",
        "The DCAT-AP catalogue in Turtle",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/catalog.jsonld",
        "Catalogue",
        "The DCAT-AP catalogue in JSON-LD",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/retention",
        "Retention",
        "Retention policies",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/retention/status",
        "Retention",
        "The last retention run",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/retention/{policyId}",
        "Retention",
        "One retention policy",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "put",
        "/api/retention/{policyId}",
        "Retention",
        "Create or replace a retention policy",
        NONE,
        Json("RetentionPolicy", true),
        &[201, 204]
    ),
    op!(
        "delete",
        "/api/retention/{policyId}",
        "Retention",
        "Delete a retention policy",
        NONE,
        NoBody,
        &[204]
    ),
    // --- OGC API Features (also described alone at /ogc/api)
    op!(
        "get",
        "/ogc",
        "OGC API Features",
        "Landing page",
        &["f"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/ogc/conformance",
        "OGC API Features",
        "Conformance classes",
        &["f"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/ogc/api",
        "OGC API Features",
        "The OGC part's own OpenAPI document",
        &["f"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/ogc/collections",
        "OGC API Features",
        "Collections",
        &["f"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/ogc/collections/{collectionId}",
        "OGC API Features",
        "One collection",
        &["f"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/ogc/collections/{collectionId}/items",
        "OGC API Features",
        "Features",
        &["f", "bbox", "bbox-crs", "crs", "limit", "offset", "datetime"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/ogc/collections/{collectionId}/items/{featureId}",
        "OGC API Features",
        "One feature",
        &["f", "crs"],
        NoBody,
        &[200]
    ),
    // --- vector tiles
    op!(
        "get",
        "/tiles",
        "Vector tiles",
        "Tile layers",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/tiles/style.json",
        "Vector tiles",
        "The MapLibre style",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/tiles/{layers}",
        "Vector tiles",
        "TileJSON of layers",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/tiles/{layers}/{z}/{x}/{y}",
        "Vector tiles",
        "A Mapbox Vector Tile",
        NONE,
        NoBody,
        &[200, 204]
    ),
    // --- server
    op!("get", "/health", "Server", "Health", NONE, NoBody, &[200]),
    op!("get", "/version", "Server", "Version", NONE, NoBody, &[200]),
    op!(
        "get",
        "/openapi.json",
        "Server",
        "This document",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/consultations",
        "Consultations",
        "Published consultations (and one's drafts)",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/api/consultations",
        "Consultations",
        "Create a consultation (planners)",
        NONE,
        Json("Consultation", true),
        &[201]
    ),
    op!(
        "get",
        "/api/consultations/{consultationId}",
        "Consultations",
        "One consultation, with its phase, counts and indicators",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "put",
        "/api/consultations/{consultationId}",
        "Consultations",
        "Replace a consultation (its planner)",
        NONE,
        Json("Consultation", true),
        &[200]
    ),
    op!(
        "delete",
        "/api/consultations/{consultationId}",
        "Consultations",
        "Delete a consultation and its contributions (its planner)",
        NONE,
        NoBody,
        &[204]
    ),
    op!(
        "put",
        "/api/consultations/{consultationId}/follow",
        "Consultations",
        "Follow a consultation",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "delete",
        "/api/consultations/{consultationId}/follow",
        "Consultations",
        "Stop following a consultation",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/consultations/{consultationId}/comments",
        "Consultations",
        "Comments, threads flattened",
        &["scenario", "parent", "sort", "limit", "offset"],
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/api/consultations/{consultationId}/comments",
        "Consultations",
        "Comment, with a stance",
        NONE,
        Json("NewComment", true),
        &[201]
    ),
    op!(
        "get",
        "/api/consultations/{consultationId}/comments/{commentId}",
        "Consultations",
        "One comment",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "patch",
        "/api/consultations/{consultationId}/comments/{commentId}",
        "Consultations",
        "Edit one's comment",
        NONE,
        Json("CommentEdit", true),
        &[200]
    ),
    op!(
        "delete",
        "/api/consultations/{consultationId}/comments/{commentId}",
        "Consultations",
        "Delete one's comment",
        NONE,
        NoBody,
        &[204]
    ),
    op!(
        "put",
        "/api/consultations/{consultationId}/comments/{commentId}/vote",
        "Consultations",
        "Vote on a comment",
        NONE,
        Json("Vote", true),
        &[200]
    ),
    op!(
        "delete",
        "/api/consultations/{consultationId}/comments/{commentId}/vote",
        "Consultations",
        "Take back a vote",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/consultations/{consultationId}/proposals",
        "Consultations",
        "Proposals",
        &["sort", "status", "limit", "offset"],
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/api/consultations/{consultationId}/proposals",
        "Consultations",
        "Propose (pinned, or a scenario of one's own)",
        NONE,
        Json("NewProposal", true),
        &[201]
    ),
    op!(
        "get",
        "/api/consultations/{consultationId}/proposals/{proposalId}",
        "Consultations",
        "One proposal",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "patch",
        "/api/consultations/{consultationId}/proposals/{proposalId}",
        "Consultations",
        "Edit one's proposal",
        NONE,
        Json("ProposalEdit", true),
        &[200]
    ),
    op!(
        "delete",
        "/api/consultations/{consultationId}/proposals/{proposalId}",
        "Consultations",
        "Withdraw one's proposal",
        NONE,
        NoBody,
        &[204]
    ),
    op!(
        "put",
        "/api/consultations/{consultationId}/proposals/{proposalId}/support",
        "Consultations",
        "Support a proposal",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "delete",
        "/api/consultations/{consultationId}/proposals/{proposalId}/support",
        "Consultations",
        "Take back a support",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/api/consultations/{consultationId}/proposals/{proposalId}/answer",
        "Consultations",
        "Answer a proposal (the consultation's planner)",
        NONE,
        Json("ProposalAnswer", true),
        &[200]
    ),
    op!(
        "post",
        "/api/consultations/{consultationId}/proposals/{proposalId}/milestones",
        "Consultations",
        "Add a milestone to a proposal (the consultation's planner)",
        NONE,
        Json("Milestone", true),
        &[201]
    ),
    op!(
        "get",
        "/api/consultations/{consultationId}/surveys/{surveyId}/response",
        "Consultations",
        "One's answers to a survey",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "put",
        "/api/consultations/{consultationId}/surveys/{surveyId}/response",
        "Consultations",
        "Answer a survey",
        NONE,
        Json("SurveyResponse", true),
        &[200, 201]
    ),
    op!(
        "post",
        "/api/consultations/{consultationId}/flags",
        "Moderation",
        "Report a comment or proposal",
        NONE,
        Json("Flag", true),
        &[201]
    ),
    op!(
        "get",
        "/api/consultations/{consultationId}/results",
        "Consultations",
        "Results: participants, stances, supports, survey counts",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/consultations/{consultationId}/results.csv",
        "Consultations",
        "Results as CSV (open data, no authors)",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/consultations/{consultationId}/results.geojson",
        "Consultations",
        "Located comments and proposals as GeoJSON (open data)",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/moderation/queue",
        "Moderation",
        "Flagged contributions (moderators)",
        &["consultation", "limit"],
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/api/moderation/actions",
        "Moderation",
        "Hide, restore or dismiss, with a public reason (moderators)",
        NONE,
        Json("ModerationAction", true),
        &[201]
    ),
    op!(
        "get",
        "/api/moderation/log",
        "Moderation",
        "The public log of moderation",
        &["consultation", "limit", "offset"],
        NoBody,
        &[200]
    ),
    op!(
        "get",
        "/api/notifications",
        "Participants",
        "One's notifications",
        &["unread", "limit"],
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/api/notifications/read",
        "Participants",
        "Mark notifications read",
        NONE,
        Json("ReadNotifications", true),
        &[200]
    ),
    op!(
        "get",
        "/api/me/participation",
        "Participants",
        "Everything kept of one's participation (GDPR export)",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "delete",
        "/api/me",
        "Participants",
        "Erase one's account and participation (GDPR)",
        NONE,
        Json("Erase", false),
        &[200]
    ),
    op!(
        "get",
        "/api/me/email",
        "Participants",
        "One's verified e-mail address, and the one waiting for its code",
        NONE,
        NoBody,
        &[200]
    ),
    op!(
        "post",
        "/api/me/email",
        "Participants",
        "Send a code to verify an e-mail address",
        NONE,
        Json("EmailAddress", true),
        &[202]
    ),
    op!(
        "post",
        "/api/me/email/verify",
        "Participants",
        "Verify an e-mail address with its code",
        NONE,
        Json("EmailCode", true),
        &[200]
    ),
    op!(
        "post",
        "/api/scenarios/{scenarioId}/fork",
        "Scenarios",
        "Fork a scenario (one's own copy)",
        NONE,
        Json("Fork", false),
        &[201]
    ),
];

/// The schema of a query parameter by name.
fn param_schema(name: &str) -> Value {
    match name {
        "limit" | "offset" | "lastN" | "joinLevel" | "k" => {
            json!({"type": "integer", "minimum": 0})
        }
        "count" | "details" | "local" | "deleteAll" | "reload" | "homes" | "expandValues" => {
            json!({"type": "boolean"})
        }
        "minutes" | "speedKmh" | "crossingS" | "cellM" | "windFromDeg" | "windMs" => {
            json!({"type": "number"})
        }
        "lon" => json!({"type": "number", "minimum": -180, "maximum": 180}),
        "lat" => json!({"type": "number", "minimum": -90, "maximum": 90}),
        "georel" => {
            json!({"type": "string", "enum": ["near;maxDistance==1000", "within", "intersects", "contains", "disjoint", "overlaps", "equals"]})
        }
        "geometry" => {
            json!({"type": "string", "enum": ["Point", "LineString", "Polygon", "MultiPolygon"]})
        }
        "timerel" => json!({"type": "string", "enum": ["before", "after", "between"]}),
        "timeAt" | "endTimeAt" | "before" => json!({"type": "string", "format": "date-time"}),
        "options" => {
            json!({"type": "string", "enum": ["keyValues", "concise", "normalized", "sysAttrs", "temporalValues", "count"]})
        }
        "format" => {
            json!({"type": "string", "enum": ["keyValues", "concise", "normalized", "temporalValues", "simplified", "geojson"]})
        }
        "f" => json!({"type": "string", "enum": ["json", "geojson", "ttl", "jsonld"]}),
        "since" | "until" => json!({"type": "string", "format": "date-time"}),
        "after" => json!({"type": "integer", "minimum": 0}),
        "mode" => json!({"type": "string", "enum": ["walk", "bike"]}),
        "by" => json!({"type": "string", "enum": ["grid", "district"]}),
        "sort" => json!({"type": "string", "enum": ["new", "old", "top", "supports"]}),
        "status" => {
            json!({"type": "string", "enum": ["submitted", "evaluating", "accepted", "rejected", "implemented", "withdrawn"]})
        }
        "unread" => json!({"type": "boolean"}),
        "id" | "type" | "datasetId" | "run" => json!({"type": "string", "minLength": 1}),
        _ => json!({"type": "string"}),
    }
}

/// The schema of a path parameter by name.
fn path_schema(name: &str) -> Value {
    match name {
        "z" => json!({"type": "integer", "minimum": 0, "maximum": 22}),
        "x" | "y" => json!({"type": "integer", "minimum": 0}),
        // URNs in practice; no `format` here, so that generators do not filter most of what they draw
        "entityId" | "scenarioId" | "runId" | "datasetId" | "subscriptionId" => {
            json!({"type": "string", "pattern": "^urn:[a-zA-Z0-9:._-]+$"})
        }
        "consultationId" | "surveyId" => {
            json!({"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"})
        }
        "commentId" => json!({"type": "string", "pattern": "^cm-[0-9a-f]{32}$"}),
        "proposalId" => json!({"type": "string", "pattern": "^pr-[0-9a-f]{32}$"}),
        _ => json!({"type": "string", "minLength": 1}),
    }
}

fn schemas() -> Value {
    let point = json!({
        "type": "object", "required": ["type", "coordinates"],
        "properties": {
            "type": {"type": "string", "enum": ["Point"]},
            "coordinates": {"type": "array", "minItems": 2, "maxItems": 2,
                            "items": {"type": "number", "minimum": -90, "maximum": 90}},
        },
    });
    let parts = [
        json!({
            "ProblemDetails": {
                "type": "object", "required": ["type", "title", "status"],
                "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"},
                    "status": {"type": "integer"}, "detail": {"type": "string"},
                },
            },
            "OgcException": {
            "type": "object", "required": ["code"],
            "properties": {"code": {"type": "string"}, "description": {"type": "string"}},
        },
        "Point": point,
            "Property": {
                "type": "object", "required": ["type", "value"],
                "properties": {
                    "type": {"type": "string", "enum": ["Property"]},
                    "value": {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"},
                                        {"type": "object", "additionalProperties": {"type": "string"}}]},
                    "observedAt": {"type": "string", "format": "date-time"},
                    "unitCode": {"type": "string"},
                },
            },
            "Relationship": {
                "type": "object", "required": ["type", "object"],
                "properties": {
                    "type": {"type": "string", "enum": ["Relationship"]},
                    "object": {"type": "string", "format": "uri"},
                },
            },
            "GeoProperty": {
                "type": "object", "required": ["type", "value"],
                "properties": {
                    "type": {"type": "string", "enum": ["GeoProperty"]},
                    "value": {"$ref": "#/components/schemas/Point"},
                },
            },
            "Attribute": {"oneOf": [
                {"$ref": "#/components/schemas/Property"},
                {"$ref": "#/components/schemas/Relationship"},
                {"$ref": "#/components/schemas/GeoProperty"},
            ]},
            "Entity": {
                "type": "object", "required": ["id", "type"],
                "properties": {
                    "id": {"type": "string", "format": "uri", "pattern": "^urn:ngsi-ld:[A-Za-z]+:[A-Za-z0-9-]+$"},
                    "type": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9]*$"},
                    "location": {"$ref": "#/components/schemas/GeoProperty"},
                },
                "additionalProperties": {"$ref": "#/components/schemas/Attribute"},
            },
        }),
        json!({
            "EntityFragment": {
                "type": "object",
                "properties": {"location": {"$ref": "#/components/schemas/GeoProperty"}},
                "additionalProperties": {"$ref": "#/components/schemas/Attribute"},
            },
            "EntityList": {"type": "array", "items": {"$ref": "#/components/schemas/Entity"}, "maxItems": 20},
            "IdList": {"type": "array", "items": {"type": "string", "format": "uri"}, "maxItems": 20},
            "TemporalEntity": {
                "type": "object", "required": ["id", "type"],
                "properties": {
                    "id": {"type": "string", "format": "uri", "pattern": "^urn:ngsi-ld:[A-Za-z]+:[A-Za-z0-9-]+$"},
                    "type": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9]*$"},
                },
                "additionalProperties": {"type": "array", "items": {"$ref": "#/components/schemas/Property"}},
            },
            "TemporalFragment": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"$ref": "#/components/schemas/Property"}},
            },
            "EntitySelector": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9]*$"},
                    "id": {"type": "string", "format": "uri"},
                    "idPattern": {"type": "string"},
                },
            },
        }),
        json!({
            "Query": {
                "type": "object", "required": ["type"],
                "properties": {
                    "type": {"type": "string", "enum": ["Query"]},
                    "entities": {"type": "array", "items": {"$ref": "#/components/schemas/EntitySelector"}},
                    "attrs": {"type": "array", "items": {"type": "string"}},
                    "q": {"type": "string"},
                    "temporalQ": {"type": "object", "properties": {
                        "timerel": {"type": "string", "enum": ["before", "after", "between"]},
                        "timeAt": {"type": "string", "format": "date-time"},
                        "endTimeAt": {"type": "string", "format": "date-time"},
                    }},
                },
            },
            "Subscription": {
                "type": "object", "required": ["type", "notification"],
                "properties": {
                    "id": {"type": "string", "format": "uri"},
                    "type": {"type": "string", "enum": ["Subscription"]},
                    "entities": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/EntitySelector"}},
                    "watchedAttributes": {"type": "array", "items": {"type": "string"}},
                    "q": {"type": "string"},
                    "isActive": {"type": "boolean"},
                    "throttling": {"type": "integer", "minimum": 0},
                    "notification": {"$ref": "#/components/schemas/NotificationParams"},
                },
            },
            "SubscriptionFragment": {
                "type": "object",
                "properties": {
                    "entities": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/EntitySelector"}},
                    "watchedAttributes": {"type": "array", "items": {"type": "string"}},
                    "q": {"type": "string"},
                    "isActive": {"type": "boolean"},
                    "notification": {"$ref": "#/components/schemas/NotificationParams"},
                },
            },
            "NotificationParams": {
                "type": "object", "required": ["endpoint"],
                "properties": {
                    "attributes": {"type": "array", "items": {"type": "string"}},
                    "format": {"type": "string", "enum": ["normalized", "keyValues", "concise"]},
                    // a documented endpoint nothing listens on: fuzzers never make the server call out
                    "endpoint": {"type": "object", "required": ["uri"], "properties": {
                        "uri": {"type": "string", "enum": ["http://127.0.0.1:9/notify"]},
                        "accept": {"type": "string", "enum": ["application/json", "application/ld+json"]},
                    }},
                },
            },
        }),
        json!({
            "ContextDocument": {
                "type": "object", "required": ["@context"],
                "properties": {"@context": {"type": "object", "additionalProperties": {"type": "string", "format": "uri"}}},
            },
            "Dataset": {
                "type": "object", "required": ["id", "title", "owner", "licence"],
                "properties": {
                    "id": {"type": "string", "pattern": "^urn:ngsi-ld:Dataset:[a-z0-9-]+$"},
                    "title": {"type": "string"}, "description": {"type": "string"},
                    "owner": {"type": "string"}, "licence": {"type": "string"},
                    "read": {"type": "string"}, "write": {"type": "string"},
                },
            },
            "Edit": {
                "type": "object", "required": ["kind"],
                "properties": {
                    "kind": {"type": "string", "enum": ["close", "capacity", "lanes", "speed", "oneWay", "add"]},
                    "links": {"type": "array", "items": {"type": "string"}},
                    "name": {"type": "string"},
                    "percent": {"type": "number"},
                    "lanes": {"type": "integer"},
                    "speedKmh": {"type": "number"},
                },
            },
            "Scenario": {
                "type": "object", "required": ["name", "edits"],
                "properties": {
                    "id": {"type": "string", "pattern": "^urn:ngsi-ld:Scenario:[a-z0-9-]+$"},
                    "name": {"type": "string"}, "description": {"type": "string"},
                    "edits": {"type": "array", "items": {"$ref": "#/components/schemas/Edit"}, "maxItems": 5},
                },
            },
        }),
        json!({
            "RunRequest": {
                "type": "object",
                "properties": {
                    "gap": {"type": "number", "minimum": 1e-14, "maximum": 0.01},
                    "maxSeconds": {"type": "number", "minimum": 1, "maximum": 30},
                },
            },
            "AccessScenario": {
                "type": "object",
                "properties": {
                    "add": {"type": "array", "maxItems": 5, "items": {"type": "object", "properties": {
                        "category": {"type": "string"}, "lon": {"type": "number"}, "lat": {"type": "number"},
                    }}},
                },
            },
            "Credentials": {
                "type": "object", "required": ["id", "password"], "additionalProperties": false,
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9._-]{2,64}$"},
                    "password": {"type": "string", "minLength": 12},
                    "displayName": {"type": "string"}, "email": {"type": "string"},
                },
            },
            "Account": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9._-]{2,64}$"},
                    "password": {"type": "string", "minLength": 12},
                    "displayName": {"type": "string"}, "email": {"type": "string"},
                    "roles": {"type": "array", "items": {"type": "string", "enum": ["admin", "data_owner", "planner", "moderator", "citizen", "device"]}},
                    "groups": {"type": "array", "items": {"type": "string"}},
                    "organisation": {"type": "string"}, "disabled": {"type": "boolean"},
                },
            },
            "KeyRequest": {
                "type": "object", "required": ["name"], "additionalProperties": false,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "scopes": {"type": "array", "items": {"type": "string", "enum": ["read", "write", "admin"]}},
                    "expiresAt": {"type": "string", "format": "date-time"},
                    "account": {"type": "string"},
                },
            },
            "Provenance": {
                "type": "object", "required": ["model", "parameters", "inputs"],
                "description": "Where a model's answer comes from",
                "properties": {
                    "model": {"type": "object", "required": ["name", "version"], "properties": {
                        "name": {"type": "string"}, "version": {"type": "string"}, "method": {"type": "string"},
                    }},
                    "parameters": {"type": "object"},
                    "inputs": {"type": "array", "items": {"type": "object", "required": ["dataset", "entities"], "properties": {
                        "dataset": {"type": "string"},
                        "title": {"type": "string", "nullable": true},
                        "licence": {"type": "string", "nullable": true},
                        "owner": {"type": "string", "nullable": true},
                        "entities": {"type": "integer", "minimum": 0},
                    }}},
                    "requestedBy": {"type": "string", "nullable": true},
                    "computedAt": {"type": "string", "format": "date-time", "nullable": true},
                },
            },
            "ScenarioResource": {
                "type": "object", "required": ["id", "name", "edits", "createdAt", "modifiedAt", "runs"],
                "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"},
                    "edits": {"type": "array", "items": {"type": "object"}},
                    "owner": {"type": "string", "nullable": true,
                              "description": "The account that created it; null: only administrators change it"},
                    "createdAt": {"type": "string", "format": "date-time"},
                    "modifiedAt": {"type": "string", "format": "date-time"},
                    "runs": {"type": "string"},
                },
            },
            "Run": {
                "type": "object", "required": ["id", "scenario", "status", "progress", "provenance"],
                "properties": {
                    "id": {"type": "string"}, "scenario": {"type": "string"},
                    "status": {"type": "string", "enum": ["queued", "running", "done", "failed", "cancelled"]},
                    "progress": {"type": "number", "minimum": 0, "maximum": 1},
                    "message": {"type": "string", "nullable": true},
                    "requestedBy": {"type": "string", "nullable": true},
                    "provenance": {"allOf": [{"$ref": "#/components/schemas/Provenance"}], "nullable": true},
                },
            },
            "AccessSummary": {
                "type": "object", "required": ["provenance"],
                "properties": {
                    "mode": {"type": "string"},
                    "provenance": {"$ref": "#/components/schemas/Provenance"},
                },
            },
            "RetentionPolicy": {
                "type": "object", "required": ["keepRaw"],
                "properties": {
                    "id": {"type": "string"},
                    "entityType": {"type": "string"}, "attribute": {"type": "string"}, "datasetId": {"type": "string"},
                    "keepRaw": {"type": "string", "enum": ["P1D", "P30D", "PT1H"]},
                    "levels": {"type": "array", "maxItems": 3, "items": {"type": "object", "required": ["period"], "properties": {
                        "period": {"type": "string", "enum": ["PT1M", "PT1H", "P1D", "P1M"]},
                        "keep": {"type": "string", "enum": ["P7D", "P5Y"]},
                    }}},
                },
            },
        }),
        json!({
            "LangText": {
                "type": "object", "description": "A text per language (BCP 47 tag → text)",
                "additionalProperties": {"type": "string", "maxLength": 1000},
                "example": {"en": "A calmer street", "fi": "Rauhallisempi katu"},
            },
            "Consultation": {
                "type": "object", "required": ["title", "scenarios", "phases"], "additionalProperties": false,
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"},
                    "title": {"$ref": "#/components/schemas/LangText"},
                    "summary": {"$ref": "#/components/schemas/LangText"},
                    "description": {"$ref": "#/components/schemas/LangText"},
                    "scenarios": {"type": "array", "minItems": 1, "maxItems": 10, "items": {"type": "string"}},
                    "phases": {"type": "array", "minItems": 1, "maxItems": 4, "items": {
                        "type": "object", "required": ["phase", "start", "end"], "properties": {
                            "phase": {"type": "string", "enum": ["information", "feedback", "voting", "results"]},
                            "start": {"type": "string", "format": "date-time"},
                            "end": {"type": "string", "format": "date-time"},
                        }}},
                    "area": {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
                    "supportsPerPerson": {"type": "integer", "minimum": 1, "maximum": 100},
                    "minAccountAgeHours": {"type": "integer", "minimum": 0},
                    "requireVerifiedEmail": {"type": "boolean"},
                    "surveys": {"type": "array", "items": {"type": "object"}},
                    "published": {"type": "boolean"},
                },
            },
            "NewComment": {
                "type": "object", "required": ["body", "stance"], "additionalProperties": false,
                "properties": {
                    "body": {"type": "string", "minLength": 1, "maxLength": 4000},
                    "stance": {"type": "string", "enum": ["for", "neutral", "against"]},
                    "scenario": {"type": "string"}, "parent": {"type": "string"},
                    "location": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}},
                    "lang": {"type": "string", "pattern": "^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$"},
                },
            },
            "CommentEdit": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "body": {"type": "string", "minLength": 1, "maxLength": 4000},
                    "stance": {"type": "string", "enum": ["for", "neutral", "against"]},
                },
            },
            "Vote": {
                "type": "object", "required": ["value"], "additionalProperties": false,
                "properties": {"value": {"type": "integer", "enum": [1, -1]}},
            },
            "NewProposal": {
                "type": "object", "required": ["title", "body"], "additionalProperties": false,
                "properties": {
                    "title": {"type": "string", "minLength": 1, "maxLength": 150},
                    "body": {"type": "string", "minLength": 1, "maxLength": 4000},
                    "location": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}},
                    "scenario": {"type": "string"},
                },
            },
            "ProposalEdit": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "title": {"type": "string", "minLength": 1, "maxLength": 150},
                    "body": {"type": "string", "minLength": 1, "maxLength": 4000},
                },
            },
            "ProposalAnswer": {
                "type": "object", "required": ["status", "text"], "additionalProperties": false,
                "properties": {
                    "status": {"type": "string", "enum": ["submitted", "evaluating", "accepted", "rejected", "implemented"]},
                    "text": {"type": "string", "minLength": 1, "maxLength": 4000},
                },
            },
            "Milestone": {
                "type": "object", "required": ["title"], "additionalProperties": false,
                "properties": {
                    "title": {"type": "string", "minLength": 1, "maxLength": 150},
                    "body": {"type": "string", "maxLength": 4000},
                    "at": {"type": "string", "format": "date-time"},
                },
            },
            "SurveyResponse": {
                "type": "object", "required": ["answers"], "additionalProperties": false,
                "properties": {"answers": {"type": "object", "description": "question id → option index, indices, 1–5, or text"}},
            },
            "Flag": {
                "type": "object", "required": ["target", "reason"], "additionalProperties": false,
                "properties": {
                    "target": {"type": "string", "pattern": "^(comment|proposal):[a-z0-9-]+$"},
                    "reason": {"type": "string", "enum": ["spam", "offensive", "off-topic", "personal-data", "other"]},
                    "note": {"type": "string", "maxLength": 500},
                },
            },
            "ModerationAction": {
                "type": "object", "required": ["target", "action"], "additionalProperties": false,
                "properties": {
                    "target": {"type": "string", "pattern": "^(comment|proposal):[a-z0-9-]+$"},
                    "action": {"type": "string", "enum": ["hide", "restore", "dismiss"]},
                    "reason": {"type": "string", "maxLength": 500},
                },
            },
            "ReadNotifications": {
                "type": "object", "additionalProperties": false,
                "properties": {"ids": {"type": "array", "items": {"type": "string"}}, "all": {"type": "boolean"}},
            },
            "Erase": {
                "type": "object", "additionalProperties": false,
                "properties": {"password": {"type": "string"}},
            },
            "EmailAddress": {
                "type": "object", "required": ["email"], "additionalProperties": false,
                "properties": {"email": {"type": "string", "format": "email"}},
            },
            "EmailCode": {
                "type": "object", "required": ["code"], "additionalProperties": false,
                "properties": {"code": {"type": "string", "pattern": "^[0-9]{6}$"}},
            },
            "Fork": {
                "type": "object", "additionalProperties": false,
                "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200}},
            },
        }),
    ];
    let mut all = Map::new();
    for p in parts {
        if let Value::Object(m) = p {
            all.extend(m);
        }
    }
    Value::Object(all)
}

/// The path parameters of a path template, in order.
pub fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn operation(o: &Operation) -> Value {
    let mut params: Vec<Value> = path_params(o.path)
        .into_iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": path_schema(name)}))
        .collect();
    params.extend(
        o.query
            .iter()
            .map(|name| json!({"name": name, "in": "query", "required": false, "schema": param_schema(name)})),
    );
    if o.path.starts_with("/ngsi-ld/") {
        params.push(json!({"name": "NGSILD-Tenant", "in": "header", "required": false,
            "description": "An organisation: the request sees and writes that organisation's datasets only",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"}}));
    }
    let mut responses = Map::new();
    for code in o.ok {
        let description = match code {
            201 => "Created (the new resource's URL in `Location`)",
            202 => "Accepted",
            204 => "Done, no content",
            207 => "Done in part: what succeeded and what failed",
            _ => "Success",
        };
        let answer = ANSWERS
            .iter()
            .find(|(m, p, _)| *m == o.method && *p == o.path)
            .map(|(_, _, schema)| json!({"$ref": format!("#/components/schemas/{schema}")}));
        let r = if *code == 204 || *code == 201 {
            json!({"description": description})
        } else if let Some(schema) = answer {
            json!({"description": description, "content": {"application/json": {"schema": schema}}})
        } else {
            json!({"description": description, "content": {"*/*": {"schema": {}}}})
        };
        responses.insert(code.to_string(), r);
    }
    // OGC API and the tiles answer errors as OGC API exceptions (`code`, `description`), the rest as ProblemDetails
    let ogc = o.path.starts_with("/ogc") || o.path.starts_with("/tiles");
    let prefix = if ogc { "Ogc" } else { "E" };
    // wrong credentials are a 401 on every operation; what the caller may not do, a 401 (anonymous) or 403
    if !ogc {
        for code in [401, 403] {
            responses.insert(
                code.to_string(),
                json!({"$ref": format!("#/components/responses/E{code}")}),
            );
        }
    } else {
        // credentials are checked before OGC API's handlers: wrong ones are answered as everywhere else
        responses.insert("401".into(), json!({"$ref": "#/components/responses/E401"}));
    }
    for code in [400, 404] {
        responses.insert(
            code.to_string(),
            json!({"$ref": format!("#/components/responses/{prefix}{code}")}),
        );
    }
    let default = if ogc { "OgcException" } else { "Problem" };
    responses.insert(
        "default".into(),
        json!({"$ref": format!("#/components/responses/{default}")}),
    );
    let mut op = json!({
        "operationId": operation_id(o),
        "summary": o.summary,
        "tags": [o.tag],
        "parameters": params,
        "responses": responses,
    });
    if let Body::Json(schema, required) = o.body {
        let s = json!({"$ref": format!("#/components/schemas/{schema}")});
        op["requestBody"] = json!({
            "required": required,
            "content": {"application/json": {"schema": s}},
        });
    }
    op
}

fn operation_id(o: &Operation) -> String {
    let mut id = o.method.to_string();
    for seg in o.path.split('/').filter(|s| !s.is_empty()) {
        let seg = seg.trim_matches(|c| c == '{' || c == '}');
        let mut cs = seg.chars().filter(|c| c.is_ascii_alphanumeric());
        if let Some(first) = cs.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(cs);
        }
    }
    id
}

/// The OpenAPI document; `public_url` is the server's base URL.
pub fn document(public_url: &str) -> Value {
    let mut paths = Map::new();
    for o in OPERATIONS {
        let entry = paths.entry(o.path.to_string()).or_insert_with(|| json!({}));
        entry[o.method] = operation(o);
    }
    let problem = |d: &str| {
        json!({"description": d, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}},
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}},
        }})
    };
    let ogc_exception = |d: &str| {
        json!({"description": d, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/OgcException"}},
        }})
    };
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "urbantwin",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The HTTP API of urbantwin, a Local Digital Twin: NGSI-LD (ETSI GS CIM 009) under \
                            /ngsi-ld/v1, datasets, traffic scenarios, air quality, the 15-minute city, live events, \
                            ingestion and retention under /api, OGC API – Features under /ogc, vector tiles under \
                            /tiles. Every error is a ProblemDetails object (RFC 7807).",
            "license": {"name": env!("CARGO_PKG_LICENSE")},
        },
        "servers": [{"url": public_url.trim_end_matches('/')}],
        "paths": paths,
        // anonymous callers may call every operation (the datasets' policies decide what they get); an API key, a
        // bearer token of the city's identity provider or a session cookie say who calls
        "security": [{}, {"bearer": []}, {"apiKey": []}, {"session": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "An API key (`utk_…`) or an OpenID Connect access token"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "session": {"type": "apiKey", "in": "cookie", "name": "urbantwin_session",
                            "description": "From POST /api/auth/login; writes also send X-CSRF-Token"},
            },
            "schemas": schemas(),
            "responses": {
                "E400": problem("The request is invalid (BadRequestData, InvalidRequest)"),
                "E401": problem("Wrong credentials, or the operation needs an account (Unauthenticated)"),
                "E403": problem("The signed-in caller may not do this (AccessDenied)"),
                "E404": problem("No such resource (ResourceNotFound, NonexistentTenant)"),
                "Problem": problem("An error, as ProblemDetails"),
                "Ogc400": ogc_exception("The request is invalid"),
                "Ogc404": ogc_exception("No such resource"),
                "OgcException": ogc_exception("An error, as an OGC API exception"),
            },
        },
    })
}

/// `GET /openapi.json`.
pub async fn serve(
    axum::extract::State(state): axum::extract::State<crate::SharedState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document(&state.config.public_url).to_string(),
    )
        .into_response()
}
