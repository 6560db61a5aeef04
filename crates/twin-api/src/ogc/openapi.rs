//! The OpenAPI 3.0 definition of the `/ogc` endpoints (`GET /ogc/api`), generated from the same constants the
//! handlers use.

use serde_json::{json, Value};

use super::{CRS84, CRS_LIST, DEFAULT_LIMIT, MAX_LIMIT};

fn json_response(description: &str, media: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {media: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}},
    })
}

fn errors(not_found: bool) -> Value {
    let mut r = json!({
        "400": {"$ref": "#/components/responses/InvalidParameter"},
        "500": {"$ref": "#/components/responses/ServerError"},
    });
    if not_found {
        r["404"] = json!({"$ref": "#/components/responses/NotFound"});
    }
    r
}

fn with_errors(ok: Value, not_found: bool) -> Value {
    let mut r = errors(not_found);
    r["200"] = ok;
    r
}

fn param(name: &str) -> Value {
    json!({"$ref": format!("#/components/parameters/{name}")})
}

/// The OpenAPI document; `base` is the URL of `/ogc`, `collections` the current collection ids.
pub fn document(base: &str, collections: &[String]) -> Value {
    let collection_id = json!({
        "name": "collectionId",
        "in": "path",
        "required": true,
        "description": "The id of a collection: an NGSI-LD entity type compacted under the core context.",
        "schema": if collections.is_empty() { json!({"type": "string"}) } else { json!({"type": "string", "enum": collections}) },
    });
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "urbantwin OGC API – Features",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The entities of the urbantwin digital twin as OGC API – Features (Part 1: Core). Every \
                            NGSI-LD entity type is a collection; every entity a feature whose geometry is its \
                            `location` and whose properties are its attribute values. Coordinates are WGS 84 \
                            longitude/latitude (CRS84).",
            "license": {"name": env!("CARGO_PKG_LICENSE")},
        },
        "servers": [{"url": base}],
        "paths": {
            "/": {"get": {
                "operationId": "getLandingPage",
                "summary": "Landing page",
                "tags": ["Capabilities"],
                "parameters": [param("f")],
                "responses": with_errors(json_response("The landing page", "application/json", "landingPage"), false),
            }},
            "/conformance": {"get": {
                "operationId": "getConformanceDeclaration",
                "summary": "The conformance classes this API implements",
                "tags": ["Capabilities"],
                "parameters": [param("f")],
                "responses": with_errors(json_response("The conformance declaration", "application/json", "confClasses"), false),
            }},
            "/api": {"get": {
                "operationId": "getApiDefinition",
                "summary": "This API definition",
                "tags": ["Capabilities"],
                "parameters": [param("f")],
                "responses": with_errors(json!({
                    "description": "The OpenAPI 3.0 document",
                    "content": {"application/vnd.oai.openapi+json;version=3.0": {"schema": {"type": "object"}}},
                }), false),
            }},
            "/collections": {"get": {
                "operationId": "getCollections",
                "summary": "The feature collections: one per entity type",
                "tags": ["Capabilities"],
                "parameters": [param("f")],
                "responses": with_errors(json_response("The collections", "application/json", "collections"), false),
            }},
            "/collections/{collectionId}": {"get": {
                "operationId": "describeCollection",
                "summary": "One feature collection, with its spatial and temporal extent",
                "tags": ["Capabilities"],
                "parameters": [collection_id.clone(), param("f")],
                "responses": with_errors(json_response("The collection", "application/json", "collection"), true),
            }},
            "/collections/{collectionId}/items": {"get": {
                "operationId": "getFeatures",
                "summary": "The features of a collection, a page at a time",
                "description": "Any other parameter whose name is an attribute of the collection's entities (compacted \
                                name) selects features whose attribute value equals the parameter value (as text, or \
                                as a number or boolean when it reads as one). Unknown parameters are an error.",
                "tags": ["Data"],
                "parameters": [collection_id.clone(), param("limit"), param("offset"), param("bbox"),
                               param("datetime"), param("crs"), param("bbox-crs"), param("f")],
                "responses": with_errors(json_response("A page of features", "application/geo+json", "featureCollectionGeoJSON"), true),
            }},
            "/collections/{collectionId}/items/{featureId}": {"get": {
                "operationId": "getFeature",
                "summary": "One feature (an entity of the collection's type)",
                "tags": ["Data"],
                "parameters": [collection_id, {
                    "name": "featureId", "in": "path", "required": true,
                    "description": "The entity id (a URI such as urn:ngsi-ld:Building:1)",
                    "schema": {"type": "string"},
                }, param("crs"), param("f")],
                "responses": with_errors(json_response("The feature", "application/geo+json", "featureGeoJSON"), true),
            }},
        },
        "components": {
            "parameters": {
                "f": {
                    "name": "f", "in": "query", "required": false, "style": "form", "explode": false,
                    "description": "The encoding of the response; only JSON is served.",
                    "schema": {"type": "string", "enum": ["json", "geojson", "application/json", "application/geo+json"]},
                },
                "limit": {
                    "name": "limit", "in": "query", "required": false, "style": "form", "explode": false,
                    "description": format!("The page size. Larger values than {MAX_LIMIT} are served as {MAX_LIMIT}."),
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                },
                "offset": {
                    "name": "offset", "in": "query", "required": false, "style": "form", "explode": false,
                    "description": "How many matching features to skip (features are ordered by id); the `next` and `prev` links carry it.",
                    "schema": {"type": "integer", "minimum": 0, "default": 0},
                },
                "bbox": {
                    "name": "bbox", "in": "query", "required": false, "style": "form", "explode": false,
                    "description": "Only features whose location intersects this box: min lon, min lat, max lon, max lat \
                                    (or 6 numbers with min/max height, which are ignored), CRS84. A box whose min lon is \
                                    greater than its max lon crosses the antimeridian.",
                    "schema": {"type": "array", "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}],
                               "items": {"type": "number"}},
                },
                "crs": {
                    "name": "crs", "in": "query", "required": false, "style": "form", "explode": false,
                    "description": "The coordinate reference system of the response geometries (the Content-Crs header names it).",
                    "schema": {"type": "string", "format": "uri", "enum": CRS_LIST, "default": CRS84},
                },
                "bbox-crs": {
                    "name": "bbox-crs", "in": "query", "required": false, "style": "form", "explode": false,
                    "description": "The coordinate reference system of `bbox`.",
                    "schema": {"type": "string", "format": "uri", "enum": CRS_LIST, "default": CRS84},
                },
                "datetime": {
                    "name": "datetime", "in": "query", "required": false, "style": "form", "explode": false,
                    "description": "An RFC 3339 instant or date, or a closed interval `a/b`, `../b`, `a/..`. A feature \
                                    matches when the observedAt of one of its attributes lies in it or, for features \
                                    without any observedAt, when the modifiedAt (last change) of one of its attributes does.",
                    "schema": {"type": "string"},
                },
            },
            "responses": {
                "InvalidParameter": {"description": "A parameter is unknown or has an invalid value.",
                                     "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}},
                "NotFound": {"description": "No such collection or feature.",
                             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}},
                "ServerError": {"description": "A server error occurred.",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}},
            },
            "schemas": {
                "exception": {"type": "object", "required": ["code"],
                              "properties": {"code": {"type": "string"}, "description": {"type": "string"}}},
                "link": {"type": "object", "required": ["href", "rel"],
                         "properties": {"href": {"type": "string"}, "rel": {"type": "string"},
                                        "type": {"type": "string"}, "title": {"type": "string"}}},
                "links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}},
                "landingPage": {"type": "object", "required": ["links"],
                                "properties": {"title": {"type": "string"}, "description": {"type": "string"},
                                               "links": {"$ref": "#/components/schemas/links"}}},
                "confClasses": {"type": "object", "required": ["conformsTo"],
                                "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}}},
                "extent": {"type": "object", "properties": {
                    "spatial": {"type": "object", "properties": {
                        "bbox": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                        "crs": {"type": "string"}}},
                    "temporal": {"type": "object", "properties": {
                        "interval": {"type": "array", "items": {"type": "array", "items": {"type": "string", "nullable": true}}},
                        "trs": {"type": "string"}}}}},
                "collection": {"type": "object", "required": ["id", "links"], "properties": {
                    "id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
                    "links": {"$ref": "#/components/schemas/links"},
                    "extent": {"$ref": "#/components/schemas/extent"},
                    "itemType": {"type": "string"},
                    "crs": {"type": "array", "items": {"type": "string"}},
                    "storageCrs": {"type": "string"}}},
                "collections": {"type": "object", "required": ["links", "collections"], "properties": {
                    "links": {"$ref": "#/components/schemas/links"},
                    "collections": {"type": "array", "items": {"$ref": "#/components/schemas/collection"}}}},
                "geometryGeoJSON": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}},
                "featureGeoJSON": {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
                    "type": {"type": "string", "enum": ["Feature"]},
                    "id": {"type": "string"},
                    "geometry": {"allOf": [{"$ref": "#/components/schemas/geometryGeoJSON"}], "nullable": true},
                    "properties": {"type": "object", "nullable": true},
                    "links": {"$ref": "#/components/schemas/links"}}},
                "featureCollectionGeoJSON": {"type": "object", "required": ["type", "features"], "properties": {
                    "type": {"type": "string", "enum": ["FeatureCollection"]},
                    "features": {"type": "array", "items": {"$ref": "#/components/schemas/featureGeoJSON"}},
                    "links": {"$ref": "#/components/schemas/links"},
                    "timeStamp": {"type": "string", "format": "date-time"},
                    "numberMatched": {"type": "integer", "minimum": 0},
                    "numberReturned": {"type": "integer", "minimum": 0}}},
            },
        },
        "tags": [
            {"name": "Capabilities", "description": "What the API offers"},
            {"name": "Data", "description": "The features"},
        ],
    })
}
