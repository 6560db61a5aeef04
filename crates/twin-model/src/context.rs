//! JSON-LD @context processing for NGSI-LD: builds an active context from user contexts plus the built-in core
//! context, expands terms to IRIs and compacts IRIs back to terms, exactly as JSON-LD 1.1 does for the cases NGSI-LD uses.
//!
//! Written here rather than taken from a general JSON-LD crate because a broker expands and compacts every attribute
//! name of every entity it serves: this keeps that to two hash look-ups, and never touches the network (documents are
//! handed in by the caller, which decides what may be fetched).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use crate::core_context::{CORE_TERMS, DEFAULT_VOCAB, INDEX, JSON, LANGUAGE, LIST, VOCAB};

/// URL of the current core context; older versions resolve to the same built-in copy.
pub const CORE_CONTEXT_URL: &str =
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld";
/// URL of the core context in v1.8.
pub const CORE_CONTEXT_URL_V18: &str =
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld";

/// Nesting limit for contexts that reference other contexts.
const MAX_DEPTH: usize = 16;

/// Why an active context could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// A context named by URL is not known; the caller may fetch it and try again.
    #[error("the @context {0} is not available")]
    Missing(String),
    /// The context is not a valid JSON-LD context.
    #[error("invalid @context: {0}")]
    Invalid(String),
}

/// True for the URLs under which clients name the NGSI-LD core context (any published version).
pub fn is_core_context_url(url: &str) -> bool {
    url.starts_with("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context")
        && url.ends_with(".jsonld")
        || url == "https://uri.etsi.org/ngsi-ld/v1.9/ngsi-ld-core-context.jsonld"
        || url == "https://uri.etsi.org/ngsi-ld/v1.8/ngsi-ld-core-context.jsonld"
}

/// The core context as a JSON-LD document, for serving it to clients.
pub fn core_context_document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut m = Map::new();
        m.insert("@version".into(), Value::from(1.1));
        m.insert("@protected".into(), Value::Bool(true));
        m.insert(
            "ngsi-ld".into(),
            Value::from("https://uri.etsi.org/ngsi-ld/"),
        );
        m.insert(
            "geojson".into(),
            Value::from("https://purl.org/geojson/vocab#"),
        );
        for &(term, iri, flags) in CORE_TERMS {
            if flags == 0 {
                m.insert(term.into(), Value::from(iri));
            } else {
                let mut d = Map::new();
                d.insert("@id".into(), Value::from(iri));
                if flags & VOCAB != 0 {
                    d.insert("@type".into(), Value::from("@vocab"));
                }
                if flags & JSON != 0 {
                    d.insert("@type".into(), Value::from("@json"));
                }
                if flags & LIST != 0 {
                    d.insert("@container".into(), Value::from("@list"));
                }
                if flags & LANGUAGE != 0 {
                    d.insert("@container".into(), Value::from("@language"));
                }
                if flags & INDEX != 0 {
                    d.insert("@container".into(), Value::from("@index"));
                }
                m.insert(term.into(), Value::Object(d));
            }
        }
        m.insert("@vocab".into(), Value::from(DEFAULT_VOCAB));
        let mut doc = Map::new();
        doc.insert("@context".into(), Value::Object(m));
        Value::Object(doc)
    })
}

#[derive(Debug, Clone, PartialEq)]
struct TermDef {
    iri: String,
    /// values are vocabulary-relative IRIs
    vocab: bool,
    /// usable as the prefix of a compact IRI
    prefix: bool,
}

/// An active context: term definitions and the default vocabulary.
#[derive(Debug, Clone)]
pub struct Context {
    terms: HashMap<String, TermDef>,
    vocab: Option<String>,
    /// IRI → preferred term (shortest, then lexicographically least)
    reverse: HashMap<String, String>,
    /// (prefix IRI, term) usable for compact IRIs, longest IRI first
    prefixes: Vec<(String, String)>,
    /// True when no user context was given (only the core context).
    core_only: bool,
}

impl Context {
    /// The active context made of the core context alone.
    pub fn core() -> Arc<Context> {
        static CORE: OnceLock<Arc<Context>> = OnceLock::new();
        CORE.get_or_init(|| {
            let mut b = Builder::default();
            b.add_core();
            Arc::new(b.finish(true))
        })
        .clone()
    }

    /// Builds the active context for a request: the user context (an object, a URL, or an array of them, as found in
    /// `@context` or a `Link` header), then the core context on top (NGSI-LD: core terms cannot be overridden).
    /// `resolve` returns the document (with its `@context` member) for a URL, or None when it is not available.
    pub fn build(
        user: &Value,
        resolve: &dyn Fn(&str) -> Option<Arc<Value>>,
    ) -> Result<Context, ContextError> {
        let mut b = Builder::default();
        let mut seen = HashSet::new();
        b.add(user, resolve, 0, &mut seen)?;
        b.add_core();
        Ok(b.finish(matches!(user, Value::Null)))
    }

    /// Every URL that building `user` needs, as far as can be seen without fetching (the caller fetches them, and
    /// any they name in turn, before calling [`Context::build`]).
    pub fn referenced_urls(user: &Value) -> Vec<String> {
        let mut out = Vec::new();
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) if !is_core_context_url(s) => out.push(s.clone()),
                Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
                _ => {}
            }
        }
        walk(user, &mut out);
        out
    }

    /// True when this context is the core context alone.
    pub fn is_core_only(&self) -> bool {
        self.core_only
    }

    /// Expands an attribute name, entity type or other vocabulary-relative term to an absolute IRI.
    pub fn expand(&self, term: &str) -> String {
        if let Some(d) = self.terms.get(term) {
            return d.iri.clone();
        }
        if let Some((prefix, suffix)) = term.split_once(':') {
            if suffix.starts_with("//") || prefix == "_" {
                return term.to_string();
            }
            if let Some(d) = self.terms.get(prefix) {
                if d.prefix {
                    return format!("{}{}", d.iri, suffix);
                }
            }
            if is_absolute_iri(term) {
                return term.to_string();
            }
        }
        match &self.vocab {
            Some(v) => format!("{v}{term}"),
            None => term.to_string(),
        }
    }

    /// Compacts an absolute IRI to the shortest term or compact IRI of this context (the inverse of [`expand`]).
    ///
    /// [`expand`]: Context::expand
    pub fn compact(&self, iri: &str) -> String {
        if let Some(t) = self.reverse.get(iri) {
            return t.clone();
        }
        if let Some(v) = &self.vocab {
            if let Some(suffix) = iri.strip_prefix(v.as_str()) {
                if !suffix.is_empty() && !self.terms.contains_key(suffix) && !suffix.contains(':') {
                    return suffix.to_string();
                }
            }
        }
        let mut best: Option<String> = None;
        for (p, term) in &self.prefixes {
            if let Some(suffix) = iri.strip_prefix(p.as_str()) {
                if suffix.is_empty() {
                    continue;
                }
                let candidate = format!("{term}:{suffix}");
                if self.terms.contains_key(&candidate) {
                    continue;
                }
                if best.as_ref().is_none_or(|b| {
                    candidate.len() < b.len() || candidate.len() == b.len() && candidate < *b
                }) {
                    best = Some(candidate);
                }
            }
        }
        best.unwrap_or_else(|| iri.to_string())
    }

    /// True when the term's values are vocabulary IRIs (`@type: @vocab`), e.g. `watchedAttributes`.
    pub fn is_vocab_term(&self, term: &str) -> bool {
        self.terms.get(term).is_some_and(|d| d.vocab)
    }
}

fn is_absolute_iri(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
}

fn is_gen_delim_end(iri: &str) -> bool {
    iri.ends_with(['/', '#', ':', '?', '[', ']', '@'])
}

#[derive(Default)]
struct Builder {
    terms: HashMap<String, TermDef>,
    vocab: Option<String>,
}

impl Builder {
    fn add_core(&mut self) {
        self.terms.insert(
            "ngsi-ld".into(),
            TermDef {
                iri: "https://uri.etsi.org/ngsi-ld/".into(),
                vocab: false,
                prefix: true,
            },
        );
        self.terms.insert(
            "geojson".into(),
            TermDef {
                iri: "https://purl.org/geojson/vocab#".into(),
                vocab: false,
                prefix: true,
            },
        );
        for &(term, iri, flags) in CORE_TERMS {
            if iri.starts_with('@') {
                continue;
            }
            let full = self.expand_iri(iri);
            // simple terms ending in a delimiter (`ngsi-ld`, `geojson`) serve as prefixes of compact IRIs
            let prefix = flags == 0 && is_gen_delim_end(&full);
            self.terms.insert(
                term.into(),
                TermDef {
                    iri: full,
                    vocab: flags & VOCAB != 0,
                    prefix,
                },
            );
        }
        self.vocab = Some(DEFAULT_VOCAB.to_string());
    }

    fn add(
        &mut self,
        ctx: &Value,
        resolve: &dyn Fn(&str) -> Option<Arc<Value>>,
        depth: usize,
        seen: &mut HashSet<String>,
    ) -> Result<(), ContextError> {
        if depth > MAX_DEPTH {
            return Err(ContextError::Invalid(format!(
                "contexts nested deeper than {MAX_DEPTH} levels"
            )));
        }
        match ctx {
            Value::Null => {
                // A null context resets user definitions.
                self.terms.clear();
                self.vocab = None;
                Ok(())
            }
            Value::Array(items) => {
                for i in items {
                    self.add(i, resolve, depth + 1, seen)?;
                }
                Ok(())
            }
            Value::String(url) => {
                if is_core_context_url(url) {
                    return Ok(());
                }
                if !seen.insert(url.clone()) {
                    return Ok(()); // already processed in this request: a cycle or a repetition
                }
                let doc = resolve(url).ok_or_else(|| ContextError::Missing(url.clone()))?;
                let inner = doc.get("@context").ok_or_else(|| {
                    ContextError::Invalid(format!("the document at {url} has no @context member"))
                })?;
                self.add(inner, resolve, depth + 1, seen)
            }
            Value::Object(m) => self.add_object(m, resolve, depth, seen),
            other => Err(ContextError::Invalid(format!(
                "a context must be an object, a URL or an array, not {other}"
            ))),
        }
    }

    fn add_object(
        &mut self,
        m: &Map<String, Value>,
        resolve: &dyn Fn(&str) -> Option<Arc<Value>>,
        depth: usize,
        seen: &mut HashSet<String>,
    ) -> Result<(), ContextError> {
        if let Some(imp) = m.get("@import") {
            self.add(imp, resolve, depth + 1, seen)?;
        }
        if let Some(v) = m.get("@vocab") {
            match v {
                Value::Null => self.vocab = None,
                Value::String(s) => {
                    let iri = if is_absolute_iri(s) {
                        s.clone()
                    } else {
                        self.expand_iri(s)
                    };
                    self.vocab = Some(iri);
                }
                _ => {
                    return Err(ContextError::Invalid(
                        "@vocab must be a string or null".into(),
                    ))
                }
            }
        }
        let mut defining = HashSet::new();
        for key in m.keys() {
            if key.starts_with('@') {
                continue;
            }
            self.define(m, key, &mut defining)?;
        }
        Ok(())
    }

    /// JSON-LD "create term definition", with forward references inside one context object.
    fn define(
        &mut self,
        local: &Map<String, Value>,
        term: &str,
        defining: &mut HashSet<String>,
    ) -> Result<(), ContextError> {
        if defining.contains(term) {
            return Ok(());
        }
        defining.insert(term.to_string());
        let Some(def) = local.get(term) else {
            return Ok(());
        };
        let (id, vocab, explicit_prefix) = match def {
            Value::Null => {
                self.terms.remove(term);
                return Ok(());
            }
            Value::String(s) => (Some(s.as_str()), false, None),
            Value::Object(o) => {
                let id = match o.get("@id") {
                    None => None,
                    Some(Value::String(s)) => Some(s.as_str()),
                    Some(Value::Null) => {
                        self.terms.remove(term);
                        return Ok(());
                    }
                    Some(_) => {
                        return Err(ContextError::Invalid(format!(
                            "@id of term {term} must be a string"
                        )))
                    }
                };
                let vocab = o.get("@type").and_then(Value::as_str) == Some("@vocab");
                (id, vocab, o.get("@prefix").and_then(Value::as_bool))
            }
            _ => {
                return Err(ContextError::Invalid(format!(
                    "the definition of term {term} must be a string or an object"
                )))
            }
        };
        let iri = match id {
            Some(keyword) if keyword.starts_with('@') => {
                // keyword alias (e.g. "id": "@id"): structural, nothing to record
                return Ok(());
            }
            Some(s) => {
                // make sure a prefix used by this definition, defined in the same object, is defined first
                if let Some((p, suffix)) = s.split_once(':') {
                    if !suffix.starts_with("//") && local.contains_key(p) {
                        self.define(local, p, defining)?;
                    }
                } else if local.contains_key(s) && s != term {
                    self.define(local, s, defining)?;
                }
                self.expand_iri(s)
            }
            None => {
                if term.contains(':') {
                    if let Some((p, _)) = term.split_once(':') {
                        if local.contains_key(p) {
                            self.define(local, p, defining)?;
                        }
                    }
                    self.expand_iri(term)
                } else {
                    match &self.vocab {
                        Some(v) => format!("{v}{term}"),
                        None => {
                            return Err(ContextError::Invalid(format!(
                                "term {term} has no @id and the context has no @vocab"
                            )))
                        }
                    }
                }
            }
        };
        let simple = matches!(def, Value::String(_));
        let prefix =
            explicit_prefix.unwrap_or(simple && !term.contains(':') && is_gen_delim_end(&iri));
        self.terms
            .insert(term.to_string(), TermDef { iri, vocab, prefix });
        Ok(())
    }

    /// Expands an IRI found in a context definition (vocab-relative).
    fn expand_iri(&self, s: &str) -> String {
        if let Some((p, suffix)) = s.split_once(':') {
            if suffix.starts_with("//") {
                return s.to_string();
            }
            if let Some(d) = self.terms.get(p) {
                return format!("{}{}", d.iri, suffix);
            }
            return s.to_string();
        }
        if let Some(d) = self.terms.get(s) {
            return d.iri.clone();
        }
        match &self.vocab {
            Some(v) => format!("{v}{s}"),
            None => s.to_string(),
        }
    }

    fn finish(self, core_only: bool) -> Context {
        let mut reverse: HashMap<String, String> = HashMap::new();
        for (term, d) in &self.terms {
            let better = match reverse.get(&d.iri) {
                None => true,
                Some(cur) => term.len() < cur.len() || term.len() == cur.len() && term < cur,
            };
            if better {
                reverse.insert(d.iri.clone(), term.clone());
            }
        }
        let mut prefixes: Vec<(String, String)> = self
            .terms
            .iter()
            .filter(|(_, d)| d.prefix)
            .map(|(t, d)| (d.iri.clone(), t.clone()))
            .collect();
        prefixes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        Context {
            terms: self.terms,
            vocab: self.vocab,
            reverse,
            prefixes,
            core_only,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn none(_: &str) -> Option<Arc<Value>> {
        None
    }

    #[test]
    fn core_terms_expand_and_compact() {
        let c = Context::core();
        assert_eq!(
            c.expand("location"),
            "https://uri.etsi.org/ngsi-ld/location"
        );
        assert_eq!(
            c.expand("observedAt"),
            "https://uri.etsi.org/ngsi-ld/observedAt"
        );
        assert_eq!(
            c.expand("temperature"),
            "https://uri.etsi.org/ngsi-ld/default-context/temperature"
        );
        assert_eq!(
            c.compact("https://uri.etsi.org/ngsi-ld/default-context/temperature"),
            "temperature"
        );
        assert_eq!(
            c.compact("https://uri.etsi.org/ngsi-ld/location"),
            "location"
        );
        assert_eq!(
            c.compact("https://uri.etsi.org/ngsi-ld/somethingNew"),
            "ngsi-ld:somethingNew"
        );
        assert_eq!(c.compact("https://example.org/x"), "https://example.org/x");
        assert_eq!(c.expand("urn:ngsi-ld:Thing:1"), "urn:ngsi-ld:Thing:1");
        assert_eq!(
            c.expand("https://example.org/a#b"),
            "https://example.org/a#b"
        );
    }

    #[test]
    fn user_context_round_trips_between_contexts() {
        let user = json!({"Building": "https://smartdatamodels.org/dataModel.Building/Building",
                          "sdm": "https://smartdatamodels.org/",
                          "address": "sdm:address",
                          "floors": {"@id": "https://smartdatamodels.org/dataModel.Building/floorsAboveGround"}});
        let a = Context::build(&user, &none).unwrap();
        assert_eq!(
            a.expand("Building"),
            "https://smartdatamodels.org/dataModel.Building/Building"
        );
        assert_eq!(a.expand("address"), "https://smartdatamodels.org/address");
        assert_eq!(a.expand("sdm:name"), "https://smartdatamodels.org/name");
        let iri = a.expand("floors");
        // read back under the core context alone: full IRI; under another alias: that alias
        assert_eq!(Context::core().compact(&iri), iri);
        let other =
            json!({"storeys": "https://smartdatamodels.org/dataModel.Building/floorsAboveGround"});
        let b = Context::build(&other, &none).unwrap();
        assert_eq!(b.compact(&iri), "storeys");
        assert_eq!(a.compact("https://smartdatamodels.org/name"), "sdm:name");
    }

    #[test]
    fn core_cannot_be_overridden_and_urls_resolve() {
        let docs: HashMap<String, Arc<Value>> = [
            (
                "http://ctx/a".to_string(),
                Arc::new(
                    json!({"@context": ["http://ctx/b", {"location": "http://evil/location"}]}),
                ),
            ),
            (
                "http://ctx/b".to_string(),
                Arc::new(json!({"@context": {"speed": "http://ex/speed"}})),
            ),
        ]
        .into_iter()
        .collect();
        let resolve = |u: &str| docs.get(u).cloned();
        let c = Context::build(&json!(["http://ctx/a", CORE_CONTEXT_URL]), &resolve).unwrap();
        assert_eq!(
            c.expand("location"),
            "https://uri.etsi.org/ngsi-ld/location"
        );
        assert_eq!(c.expand("speed"), "http://ex/speed");
        assert_eq!(
            Context::build(&json!("http://ctx/missing"), &resolve).unwrap_err(),
            ContextError::Missing("http://ctx/missing".into())
        );
        assert!(matches!(
            Context::build(&json!(42), &resolve),
            Err(ContextError::Invalid(_))
        ));
    }

    #[test]
    fn cyclic_contexts_terminate() {
        let docs: HashMap<String, Arc<Value>> = [
            (
                "http://c/1".to_string(),
                Arc::new(json!({"@context": ["http://c/2", {"a": "http://x/a"}]})),
            ),
            (
                "http://c/2".to_string(),
                Arc::new(json!({"@context": ["http://c/1"]})),
            ),
        ]
        .into_iter()
        .collect();
        let c = Context::build(&json!("http://c/1"), &|u: &str| docs.get(u).cloned()).unwrap();
        assert_eq!(c.expand("a"), "http://x/a");
    }

    #[test]
    fn core_document_lists_every_term() {
        let d = core_context_document();
        let m = d["@context"].as_object().unwrap();
        assert_eq!(m["@vocab"], DEFAULT_VOCAB);
        assert_eq!(m["value"], "ngsi-ld:hasValue");
        assert!(is_core_context_url(CORE_CONTEXT_URL_V18));
    }
}
