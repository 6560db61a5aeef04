//! The raw OSM element stream: format detection, then PBF blocks (osmpbf) or OSM XML (quick-xml, streaming),
//! both turned into one owned [`Element`] type and replayed pass after pass.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use osmpbf::{BlobDecode, BlobReader, RelMemberType};
use quick_xml::events::{BytesStart, Event};
use quick_xml::XmlVersion;

use crate::ImportError;

/// The two encodings of OSM data this reader understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum OsmFormat {
    Pbf,
    Xml,
}

/// Tags of an element, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tags(pub Vec<(String, String)>);

impl Tags {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn is(&self, key: &str, value: &str) -> bool {
        self.get(key) == Some(value)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    Node,
    Way,
    Relation,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub kind: MemberKind,
    pub id: i64,
    pub role: String,
}

/// One OSM element, owned. Coordinates are kept in the file's 1e-7 degree integers (exact, compact).
#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    Node {
        id: i64,
        lon7: i32,
        lat7: i32,
        tags: Tags,
    },
    Way {
        id: i64,
        refs: Vec<i64>,
        tags: Tags,
    },
    Relation {
        id: i64,
        members: Vec<Member>,
        tags: Tags,
    },
}

/// Which element kinds a pass wants (the others are not decoded when the format allows skipping them).
#[derive(Debug, Clone, Copy)]
pub struct Want {
    pub nodes: bool,
    pub ways: bool,
    pub relations: bool,
}

impl Want {
    fn mask(self) -> u8 {
        (self.nodes as u8) | (self.ways as u8) << 1 | (self.relations as u8) << 2
    }
}

/// What each PBF block holds (bit 0 nodes, 1 ways, 2 relations; the header none), learnt the first time a pass
/// decodes it, so that later passes skip decompressing and parsing blocks with nothing they want (an extract is mostly
/// node blocks, which three of the four passes do not need).
#[derive(Debug, Default)]
pub struct BlockKinds(Vec<Option<u8>>);

impl BlockKinds {
    fn get(&self, i: usize) -> Option<u8> {
        self.0.get(i).copied().flatten()
    }

    fn set(&mut self, i: usize, mask: u8) {
        if self.0.len() <= i {
            self.0.resize(i + 1, None);
        }
        self.0[i] = Some(mask);
    }
}

/// Where the elements come from: a file, opened anew for every pass, or bytes held in memory.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    File(&'a Path),
    Bytes(&'a [u8]),
}

impl<'a> Input<'a> {
    /// A reader from the start of the data, and the data's length in bytes (`u64::MAX` when unknown).
    fn open(self, file: &str) -> Result<(Box<dyn BufRead + Send + 'a>, u64), ImportError> {
        match self {
            Input::File(path) => {
                let fh = File::open(path)
                    .map_err(|e| ImportError::file(file, format!("cannot open: {e}")))?;
                let len = fh.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
                Ok((Box::new(BufReader::new(fh)), len))
            }
            Input::Bytes(b) => Ok((Box::new(b), b.len() as u64)),
        }
    }
}

/// Detects the format from the first bytes of the data.
pub fn detect(input: Input<'_>, file: &str) -> Result<OsmFormat, ImportError> {
    let (mut f, _) = input.open(file)?;
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(ImportError::file(file, format!("cannot read: {e}"))),
        }
    }
    let head = &head[..n];
    if head.is_empty() {
        return Err(ImportError::file(file, "empty file"));
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    if text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
        return Ok(OsmFormat::Xml);
    }
    if head.len() > 8 && head[4..].windows(9).any(|w| w == b"OSMHeader") {
        return Ok(OsmFormat::Pbf);
    }
    let hint = if head.starts_with(&[0x1f, 0x8b]) {
        " (gzip-compressed: decompress it first)"
    } else if head.starts_with(b"BZh") {
        " (bzip2-compressed: decompress it first)"
    } else {
        ""
    };
    Err(ImportError::file(
        file,
        format!("neither OSM PBF nor OSM XML{hint}"),
    ))
}

/// Reads every element of the kinds in `want`, in file order, handing each to `f`. `f` returning an error stops the
/// pass with that error.
pub fn scan(
    input: Input<'_>,
    file: &str,
    format: OsmFormat,
    want: Want,
    kinds: &mut BlockKinds,
    f: &mut dyn FnMut(Element) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    match format {
        OsmFormat::Pbf => scan_pbf(input, file, want, kinds, f),
        OsmFormat::Xml => scan_xml(input, file, want, f),
    }
}

/// Counts the bytes the blob reader consumed, so errors can name a byte offset and a short file can be told from a
/// complete one.
struct Counting<R> {
    inner: R,
    pos: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn scan_pbf(
    input: Input<'_>,
    file: &str,
    want: Want,
    kinds: &mut BlockKinds,
    f: &mut dyn FnMut(Element) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let (inner, len) = input.open(file)?;
    let pos = Arc::new(AtomicU64::new(0));
    let reader = BlobReader::new(Counting {
        inner,
        pos: pos.clone(),
    });
    let mut first = true;
    let mut start = 0u64;
    for (index, blob) in reader.enumerate() {
        let at = |start: u64| format!("byte {start}");
        let blob = blob.map_err(|e| {
            ImportError::new(file, at(start), format!("corrupt or truncated PBF: {e}"))
        })?;
        if kinds.get(index).is_some_and(|mask| mask & want.mask() == 0) {
            // decoded and checked by an earlier pass, and nothing in it for this one
            first = false;
            start = pos.load(Ordering::Relaxed);
            continue;
        }
        // osmpbf (and the protobuf code under it) panics on some corrupt blocks: an unknown relation member type
        // unwraps an enum, and with overflow checks the delta decoding of ids and coordinates overflows. Those
        // panics are contained here and become an error about the block; nothing else runs inside.
        let decoded = catch_unwind(AssertUnwindSafe(
            || -> Result<Option<(u8, Vec<Element>)>, String> {
                match blob.decode().map_err(|e| e.to_string())? {
                    BlobDecode::OsmHeader(h) => {
                        for feature in h.required_features() {
                            if !matches!(
                                feature.as_str(),
                                "OsmSchema-V0.6" | "DenseNodes" | "HistoricalInformation"
                            ) {
                                return Err(format!(
                                    "unsupported required PBF feature {feature:?}"
                                ));
                            }
                        }
                        Ok(None)
                    }
                    BlobDecode::OsmData(block) => Ok(Some(block_elements(&block, want))),
                    BlobDecode::Unknown(_) => Ok(None),
                }
            },
        ));
        let elements = match decoded {
            Ok(Ok(e)) => {
                kinds.set(index, e.as_ref().map_or(0, |(mask, _)| *mask));
                e.map(|(_, elements)| elements)
            }
            Ok(Err(reason)) => {
                return Err(ImportError::new(
                    file,
                    at(start),
                    format!("corrupt PBF block: {reason}"),
                ))
            }
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("");
                return Err(ImportError::new(
                    file,
                    at(start),
                    format!("corrupt PBF block (undecodable element data: {detail})"),
                ));
            }
        };
        if first {
            first = false;
            if elements.is_some() {
                return Err(ImportError::new(
                    file,
                    at(start),
                    "PBF file does not start with an OSMHeader block",
                ));
            }
        }
        for e in elements.into_iter().flatten() {
            f(e)?;
        }
        start = pos.load(Ordering::Relaxed);
    }
    let end = pos.load(Ordering::Relaxed);
    if first {
        return Err(ImportError::file(file, "no PBF blocks"));
    }
    if end != len {
        return Err(ImportError::new(
            file,
            format!("byte {end}"),
            "truncated PBF file (incomplete block)",
        ));
    }
    Ok(())
}

/// The wanted elements of a block, and what kinds it holds.
fn block_elements(block: &osmpbf::PrimitiveBlock, want: Want) -> (u8, Vec<Element>) {
    let tags = |it: &mut dyn Iterator<Item = (&str, &str)>| {
        Tags(it.map(|(k, v)| (k.to_string(), v.to_string())).collect())
    };
    let mut out = Vec::new();
    let mut mask = 0u8;
    for group in block.groups() {
        if group.nodes().next().is_some() || group.dense_nodes().next().is_some() {
            mask |= 1;
        }
        if group.ways().next().is_some() {
            mask |= 2;
        }
        if group.relations().next().is_some() {
            mask |= 4;
        }
        if want.nodes {
            for n in group.nodes() {
                out.push(Element::Node {
                    id: n.id(),
                    lon7: n.decimicro_lon(),
                    lat7: n.decimicro_lat(),
                    tags: tags(&mut n.tags()),
                });
            }
            for n in group.dense_nodes() {
                out.push(Element::Node {
                    id: n.id(),
                    lon7: n.decimicro_lon(),
                    lat7: n.decimicro_lat(),
                    tags: tags(&mut n.tags()),
                });
            }
        }
        if want.ways {
            for w in group.ways() {
                out.push(Element::Way {
                    id: w.id(),
                    refs: w.refs().collect(),
                    tags: tags(&mut w.tags()),
                });
            }
        }
        if want.relations {
            for r in group.relations() {
                let members = r
                    .members()
                    .map(|m| Member {
                        kind: match m.member_type {
                            RelMemberType::Node => MemberKind::Node,
                            RelMemberType::Way => MemberKind::Way,
                            RelMemberType::Relation => MemberKind::Relation,
                        },
                        id: m.member_id,
                        role: m.role().unwrap_or("").to_string(),
                    })
                    .collect();
                out.push(Element::Relation {
                    id: r.id(),
                    members,
                    tags: tags(&mut r.tags()),
                });
            }
        }
    }
    (mask, out)
}

/// The element being assembled from XML events.
enum Partial {
    None,
    Node { id: i64, lon7: i32, lat7: i32 },
    Way { id: i64 },
    Relation { id: i64 },
}

fn scan_xml(
    input: Input<'_>,
    file: &str,
    want: Want,
    f: &mut dyn FnMut(Element) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let (inner, _) = input.open(file)?;
    let mut reader = quick_xml::Reader::from_reader(inner);
    reader.config_mut().check_end_names = true;
    xml_events(&mut reader, file, want, f)
}

fn xml_events<R: BufRead>(
    reader: &mut quick_xml::Reader<R>,
    file: &str,
    want: Want,
    f: &mut dyn FnMut(Element) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut root_closed = false;
    let mut partial = Partial::None;
    let mut tags = Tags::default();
    let mut refs: Vec<i64> = Vec::new();
    let mut members: Vec<Member> = Vec::new();
    loop {
        let at = reader.buffer_position();
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            ImportError::new(
                file,
                format!("byte {}", reader.error_position()),
                format!("malformed XML: {e}"),
            )
        })?;
        let loc = || format!("byte {at}");
        let (start, empty) = match &event {
            Event::Start(s) => (Some(s), false),
            Event::Empty(s) => (Some(s), true),
            _ => (None, false),
        };
        if let Some(s) = start {
            let name = s.name();
            let name = name.as_ref();
            if root_closed {
                return Err(ImportError::new(
                    file,
                    loc(),
                    "content after the closing </osm>",
                ));
            }
            if !seen_root {
                if name != "osm" && name != "osmChange" {
                    return Err(ImportError::new(
                        file,
                        loc(),
                        "not OSM XML: the root element is not <osm>",
                    ));
                }
                if name == "osmChange" {
                    return Err(ImportError::new(
                        file,
                        loc(),
                        "osmChange (diff) files are not supported",
                    ));
                }
                seen_root = true;
                if empty {
                    root_closed = true;
                } else {
                    depth += 1;
                }
                continue;
            }
            match name {
                "node" | "way" | "relation" if depth == 1 => {
                    let a = attrs(s, file, &loc())?;
                    let id = parse_attr::<i64>(&a, "id", file, &loc())?;
                    partial = match name {
                        "node" => {
                            let lat = parse_attr::<f64>(&a, "lat", file, &loc())?;
                            let lon = parse_attr::<f64>(&a, "lon", file, &loc())?;
                            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                                return Err(ImportError::new(
                                    file,
                                    format!("node {id}"),
                                    "coordinates out of range",
                                ));
                            }
                            Partial::Node {
                                id,
                                lon7: (lon * 1e7).round() as i32,
                                lat7: (lat * 1e7).round() as i32,
                            }
                        }
                        "way" => Partial::Way { id },
                        _ => Partial::Relation { id },
                    };
                    tags.0.clear();
                    refs.clear();
                    members.clear();
                }
                "tag" if depth == 2 => {
                    let a = attrs(s, file, &loc())?;
                    let k = get_attr(&a, "k", file, &loc())?;
                    let v = get_attr(&a, "v", file, &loc())?;
                    tags.0.push((k.to_string(), v.to_string()));
                }
                "nd" if depth == 2 => {
                    let a = attrs(s, file, &loc())?;
                    refs.push(parse_attr::<i64>(&a, "ref", file, &loc())?);
                }
                "member" if depth == 2 => {
                    let a = attrs(s, file, &loc())?;
                    let kind = match get_attr(&a, "type", file, &loc())? {
                        "node" => MemberKind::Node,
                        "way" => MemberKind::Way,
                        "relation" => MemberKind::Relation,
                        other => {
                            return Err(ImportError::new(
                                file,
                                loc(),
                                format!("unknown member type {other:?}"),
                            ));
                        }
                    };
                    let id = parse_attr::<i64>(&a, "ref", file, &loc())?;
                    let role = a
                        .iter()
                        .find(|(k, _)| k == "role")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    members.push(Member { kind, id, role });
                }
                _ => {}
            }
            if empty {
                if depth == 1 {
                    finish(&mut partial, &mut tags, &mut refs, &mut members, want, f)?;
                }
            } else {
                depth += 1;
            }
            continue;
        }
        match event {
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    finish(&mut partial, &mut tags, &mut refs, &mut members, want, f)?;
                } else if depth == 0 {
                    root_closed = true;
                }
            }
            Event::Eof => {
                if !seen_root {
                    return Err(ImportError::file(file, "not OSM XML: no <osm> element"));
                }
                if !root_closed {
                    return Err(ImportError::new(
                        file,
                        loc(),
                        "unexpected end of file (truncated XML: <osm> not closed)",
                    ));
                }
                return Ok(());
            }
            _ => {}
        }
        buf.clear();
    }
}

fn finish(
    partial: &mut Partial,
    tags: &mut Tags,
    refs: &mut Vec<i64>,
    members: &mut Vec<Member>,
    want: Want,
    f: &mut dyn FnMut(Element) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let tags = std::mem::take(tags);
    match std::mem::replace(partial, Partial::None) {
        Partial::None => Ok(()),
        Partial::Node { id, lon7, lat7 } if want.nodes => f(Element::Node {
            id,
            lon7,
            lat7,
            tags,
        }),
        Partial::Way { id } if want.ways => f(Element::Way {
            id,
            refs: std::mem::take(refs),
            tags,
        }),
        Partial::Relation { id } if want.relations => f(Element::Relation {
            id,
            members: std::mem::take(members),
            tags,
        }),
        _ => Ok(()),
    }
}

fn attrs(s: &BytesStart<'_>, file: &str, loc: &str) -> Result<Vec<(String, String)>, ImportError> {
    let mut out = Vec::new();
    for a in s.attributes() {
        let a =
            a.map_err(|e| ImportError::new(file, loc, format!("malformed XML attribute: {e}")))?;
        let key = a.key.as_ref().to_string();
        let value = a
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| {
                ImportError::new(file, loc, format!("malformed XML attribute {key}: {e}"))
            })?
            .into_owned();
        out.push((key, value));
    }
    Ok(out)
}

fn get_attr<'a>(
    a: &'a [(String, String)],
    key: &str,
    file: &str,
    loc: &str,
) -> Result<&'a str, ImportError> {
    a.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ImportError::new(file, loc, format!("missing attribute {key}")))
}

fn parse_attr<T: std::str::FromStr>(
    a: &[(String, String)],
    key: &str,
    file: &str,
    loc: &str,
) -> Result<T, ImportError> {
    let v = get_attr(a, key, file, loc)?;
    v.trim().parse().map_err(|_| {
        ImportError::new(
            file,
            loc,
            format!("attribute {key}={v:?} is not a valid number"),
        )
    })
}
