//! Readers for the TNTP traffic-assignment benchmark files (Transportation Networks for Research): networks
//! (`*_net.tntp`), trip tables (`*_trips.tntp`), node coordinates (`*_node.tntp`) and link flows (`*_flow.tntp`).
//!
//! The files are read line by line (one reusable buffer, no whole-file string), checked against their metadata
//! header (`<NUMBER OF LINKS>`, `<NUMBER OF ZONES>`, `<TOTAL OD FLOW>`...) and every problem is reported as an
//! [`ImportError`] naming the file, the line and the reason. Values are returned in the file's own units: TNTP
//! networks differ (minutes or hundredths of hours, feet or miles), so converting is the caller's business.
//!
//! [`read_tntp`] turns a network (with its node, flow and trip files) into entities — `RoadNode`, `RoadSegment`,
//! `TrafficZone` — for `urbantwin import tntp`; its doc has the mapping.
//!
//! ```
//! use twin_import::tntp::parse_net;
//! let text = "<NUMBER OF ZONES> 1\n<NUMBER OF NODES> 2\n<FIRST THRU NODE> 1\n<NUMBER OF LINKS> 1\n\
//!             <END OF METADATA>\n~ init term cap len fft b power speed toll type ;\n\
//!             \t1\t2\t900\t3\t3\t0.15\t4\t0\t0\t1\t;\n";
//! let net = parse_net(text.as_bytes(), "tiny_net.tntp").unwrap();
//! assert_eq!(net.links.len(), 1);
//! assert_eq!(net.links[0].capacity, 900.0);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::ImportError;

/// A TNTP network file: its metadata and its directed links, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct TntpNetwork {
    /// `<NUMBER OF ZONES>`: zones are the nodes `1..=zones`.
    pub zones: u32,
    /// `<NUMBER OF NODES>`: node ids run over `1..=nodes`.
    pub nodes: u32,
    /// `<FIRST THRU NODE>`: nodes below it are zone centroids that traffic may not pass through.
    pub first_thru_node: u32,
    pub links: Vec<TntpLink>,
}

/// One directed link of a TNTP network, in the file's units. Travel time under flow `v` is
/// `free_flow_time * (1 + b * (v / capacity)^power)` (BPR).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TntpLink {
    pub init: u32,
    pub term: u32,
    pub capacity: f64,
    pub length: f64,
    pub free_flow_time: f64,
    pub b: f64,
    pub power: f64,
    pub speed: f64,
    pub toll: f64,
    pub link_type: i32,
}

/// A TNTP trip table: origin–destination flows between zones `1..=zones`.
#[derive(Debug, Clone, PartialEq)]
pub struct TntpTrips {
    /// `<NUMBER OF ZONES>`.
    pub zones: u32,
    /// The sum of all flows read (checked against `<TOTAL OD FLOW>` when the file states it).
    pub total_flow: f64,
    /// `(origin, destination, flow)` in file order, zero flows included.
    pub od: Vec<(u32, u32, f64)>,
}

/// One row of a node file: the node id and its coordinates (whatever system the network uses).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TntpNode {
    pub id: u32,
    pub x: f64,
    pub y: f64,
}

/// One row of a flow (solution) file: link `from → to`, its volume and its cost at that volume.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TntpFlow {
    pub from: u32,
    pub to: u32,
    pub volume: f64,
    pub cost: f64,
}

/// Reads a `*_net.tntp` file.
pub fn read_net(path: impl AsRef<Path>) -> Result<TntpNetwork, ImportError> {
    let (reader, name) = open(path.as_ref())?;
    parse_net(reader, &name)
}

/// Reads a `*_trips.tntp` file.
pub fn read_trips(path: impl AsRef<Path>) -> Result<TntpTrips, ImportError> {
    let (reader, name) = open(path.as_ref())?;
    parse_trips(reader, &name)
}

/// Reads a `*_node.tntp` file.
pub fn read_nodes(path: impl AsRef<Path>) -> Result<Vec<TntpNode>, ImportError> {
    let (reader, name) = open(path.as_ref())?;
    parse_nodes(reader, &name)
}

/// Reads a `*_flow.tntp` file.
pub fn read_flows(path: impl AsRef<Path>) -> Result<Vec<TntpFlow>, ImportError> {
    let (reader, name) = open(path.as_ref())?;
    parse_flows(reader, &name)
}

const LINK_FIELDS: [&str; 10] = [
    "init",
    "term",
    "capacity",
    "length",
    "free_flow_time",
    "b",
    "power",
    "speed",
    "toll",
    "link_type",
];

/// Parses a network file from any reader (`text.as_bytes()` for a string); `file` names it in errors.
pub fn parse_net(reader: impl BufRead, file: &str) -> Result<TntpNetwork, ImportError> {
    let mut lines = Lines::new(reader, file);
    let meta = read_metadata(&mut lines)?;
    let zones = meta.required_u32(file, "NUMBER OF ZONES")?;
    let nodes = meta.required_u32(file, "NUMBER OF NODES")?;
    let first_thru_node = meta.required_u32(file, "FIRST THRU NODE")?;
    let link_count = meta.required_u32(file, "NUMBER OF LINKS")?;
    if zones > nodes {
        return Err(ImportError::file(
            file,
            format!("<NUMBER OF ZONES> {zones} exceeds <NUMBER OF NODES> {nodes}"),
        ));
    }
    if first_thru_node == 0 || first_thru_node > nodes.saturating_add(1) {
        return Err(ImportError::file(
            file,
            format!(
                "<FIRST THRU NODE> {first_thru_node} is outside 1..={} ",
                nodes.saturating_add(1)
            ),
        ));
    }
    // Trust the header for the allocation only up to a sane bound: a garbled count must not exhaust memory.
    let mut links = Vec::with_capacity((link_count as usize).min(1 << 20));
    while lines.advance()? {
        let line = lines.line();
        let row = data_part(line);
        if row.is_empty() {
            continue;
        }
        let fields: [&str; 10] = split_fields(row).map_err(|found| {
            lines.error(format!(
                "expected {} fields ({}), found {found}",
                LINK_FIELDS.len(),
                LINK_FIELDS.join(" ")
            ))
        })?;
        let node = |i: usize| -> Result<u32, ImportError> {
            let id = parse_u32(fields[i]).ok_or_else(|| {
                lines.error(format!(
                    "{} {:?} is not a node number",
                    LINK_FIELDS[i], fields[i]
                ))
            })?;
            if id == 0 || id > nodes {
                return Err(lines.error(format!(
                    "{} node {id} is outside 1..={nodes} (<NUMBER OF NODES>)",
                    LINK_FIELDS[i]
                )));
            }
            Ok(id)
        };
        let number = |i: usize, non_negative: bool| -> Result<f64, ImportError> {
            let value = parse_f64(fields[i]).ok_or_else(|| {
                lines.error(format!(
                    "{} {:?} is not a finite number",
                    LINK_FIELDS[i], fields[i]
                ))
            })?;
            if non_negative && value < 0.0 {
                return Err(lines.error(format!("{} is negative ({value})", LINK_FIELDS[i])));
            }
            Ok(value)
        };
        let link = TntpLink {
            init: node(0)?,
            term: node(1)?,
            capacity: number(2, true)?,
            length: number(3, true)?,
            free_flow_time: number(4, true)?,
            b: number(5, true)?,
            power: number(6, true)?,
            speed: number(7, true)?,
            toll: number(8, false)?,
            link_type: fields[9]
                .parse::<i32>()
                .map_err(|_| lines.error(format!("link_type {:?} is not an integer", fields[9])))?,
        };
        links.push(link);
    }
    if links.len() != link_count as usize {
        return Err(ImportError::file(
            file,
            format!(
                "found {} links but <NUMBER OF LINKS> says {link_count}",
                links.len()
            ),
        ));
    }
    Ok(TntpNetwork {
        zones,
        nodes,
        first_thru_node,
        links,
    })
}

/// Parses a trip table from any reader; `file` names it in errors.
///
/// Each `Origin o` line opens a block of `destination : flow;` pairs (any number per line). Origins and destinations
/// must lie in `1..=zones`, flows must be finite and non-negative, an origin may appear once and a destination once
/// per origin, and the sum of flows must match `<TOTAL OD FLOW>` (to half a trip or one part in a million).
pub fn parse_trips(reader: impl BufRead, file: &str) -> Result<TntpTrips, ImportError> {
    let mut lines = Lines::new(reader, file);
    let meta = read_metadata(&mut lines)?;
    let zones = meta.required_u32(file, "NUMBER OF ZONES")?;
    let stated_total = match meta.get("TOTAL OD FLOW") {
        None => None,
        Some((line, value)) => Some(parse_f64(&value.replace(',', "")).ok_or_else(|| {
            ImportError::new(
                file,
                format!("line {line}"),
                format!("<TOTAL OD FLOW> {value:?} is not a number"),
            )
        })?),
    };
    // Guard the per-zone bookkeeping against absurd headers (the largest TNTP tables have a few thousand zones).
    if zones > 1_000_000 {
        return Err(ImportError::file(
            file,
            format!("<NUMBER OF ZONES> {zones} is implausibly large"),
        ));
    }
    let mut origin_seen = vec![false; zones as usize + 1];
    // `dest_mark[d] == o` when destination d was already given for origin o.
    let mut dest_mark = vec![0u32; zones as usize + 1];
    let mut origin: Option<u32> = None;
    let mut od = Vec::new();
    let mut total = 0.0;
    while lines.advance()? {
        let line = lines.line();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('~') {
            continue;
        }
        let mut words = trimmed.split_whitespace();
        if words
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("origin"))
        {
            let rest: Vec<&str> = words.filter(|w| *w != ";").collect();
            let [number] = rest.as_slice() else {
                return Err(lines.error("expected `Origin <zone>`"));
            };
            let o = parse_u32(number.trim_end_matches(';'))
                .ok_or_else(|| lines.error(format!("origin {number:?} is not a zone number")))?;
            if o == 0 || o > zones {
                return Err(lines.error(format!(
                    "origin {o} is outside 1..={zones} (<NUMBER OF ZONES>)"
                )));
            }
            if std::mem::replace(&mut origin_seen[o as usize], true) {
                return Err(lines.error(format!("origin {o} appears twice")));
            }
            origin = Some(o);
            continue;
        }
        let Some(o) = origin else {
            return Err(lines.error("destination flows before any `Origin` line"));
        };
        for pair in trimmed.split(';') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let Some((dest, flow)) = pair.split_once(':') else {
                return Err(lines.error(format!("expected `destination : flow`, found {pair:?}")));
            };
            let (dest, flow) = (dest.trim(), flow.trim());
            let d = parse_u32(dest)
                .ok_or_else(|| lines.error(format!("destination {dest:?} is not a zone number")))?;
            if d == 0 || d > zones {
                return Err(lines.error(format!(
                    "destination {d} is outside 1..={zones} (<NUMBER OF ZONES>)"
                )));
            }
            let v = parse_f64(flow).ok_or_else(|| {
                lines.error(format!("flow {flow:?} to {d} is not a finite number"))
            })?;
            if v < 0.0 {
                return Err(lines.error(format!("flow {o} → {d} is negative ({v})")));
            }
            if std::mem::replace(&mut dest_mark[d as usize], o) == o {
                return Err(lines.error(format!("flow {o} → {d} is given twice")));
            }
            total += v;
            od.push((o, d, v));
        }
    }
    if let Some(stated) = stated_total {
        if (total - stated).abs() > 0.5 + 1e-6 * stated.abs() {
            return Err(ImportError::file(
                file,
                format!("flows add up to {total} but <TOTAL OD FLOW> says {stated}"),
            ));
        }
    }
    Ok(TntpTrips {
        zones,
        total_flow: total,
        od,
    })
}

/// Parses a node-coordinate file (`node x y ;` rows after an optional `Node X Y` header) from any reader.
pub fn parse_nodes(reader: impl BufRead, file: &str) -> Result<Vec<TntpNode>, ImportError> {
    let mut nodes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    parse_table(reader, file, ["node", "x", "y"], |fields, lines| {
        let id = parse_u32(fields[0]).filter(|id| *id > 0).ok_or_else(|| {
            lines.error(format!(
                "node {:?} is not a positive node number",
                fields[0]
            ))
        })?;
        let x = parse_f64(fields[1])
            .ok_or_else(|| lines.error(format!("x {:?} is not a finite number", fields[1])))?;
        let y = parse_f64(fields[2])
            .ok_or_else(|| lines.error(format!("y {:?} is not a finite number", fields[2])))?;
        if !seen.insert(id) {
            return Err(lines.error(format!("node {id} appears twice")));
        }
        nodes.push(TntpNode { id, x, y });
        Ok(())
    })?;
    Ok(nodes)
}

/// Parses a link-flow file (`from to volume cost` rows after an optional `From To Volume Cost` header).
pub fn parse_flows(reader: impl BufRead, file: &str) -> Result<Vec<TntpFlow>, ImportError> {
    let mut flows = Vec::new();
    parse_table(
        reader,
        file,
        ["from", "to", "volume", "cost"],
        |fields, lines| {
            let node = |i: usize, what: &str| {
                parse_u32(fields[i]).filter(|id| *id > 0).ok_or_else(|| {
                    lines.error(format!(
                        "{what} {:?} is not a positive node number",
                        fields[i]
                    ))
                })
            };
            let number = |i: usize, what: &str| {
                parse_f64(fields[i]).ok_or_else(|| {
                    lines.error(format!("{what} {:?} is not a finite number", fields[i]))
                })
            };
            let flow = TntpFlow {
                from: node(0, "from")?,
                to: node(1, "to")?,
                volume: number(2, "volume")?,
                cost: number(3, "cost")?,
            };
            if flow.volume < 0.0 {
                return Err(lines.error(format!("volume is negative ({})", flow.volume)));
            }
            flows.push(flow);
            Ok(())
        },
    )?;
    Ok(flows)
}

/// Rows of whitespace-separated numbers with exactly `columns.len()` fields; a first non-numeric row is a header.
fn parse_table<R: BufRead, const N: usize>(
    reader: R,
    file: &str,
    columns: [&str; N],
    mut row: impl FnMut(&[&str; N], &Lines<R>) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let mut lines = Lines::new(reader, file);
    let mut first = true;
    while lines.advance()? {
        let data = data_part(lines.line());
        if data.is_empty() {
            continue;
        }
        let is_first = std::mem::replace(&mut first, false);
        if is_first
            && data
                .split_whitespace()
                .next()
                .is_some_and(|f| f.parse::<f64>().is_err())
        {
            continue; // the header row
        }
        let fields: [&str; N] = split_fields(data).map_err(|found| {
            lines.error(format!(
                "expected {N} fields ({}), found {found}",
                columns.join(" ")
            ))
        })?;
        row(&fields, &lines)?;
    }
    Ok(())
}

/// The metadata header: `<TAG> value` lines up to `<END OF METADATA>`.
struct Metadata {
    /// (tag in upper case, line number, value).
    entries: Vec<(String, usize, String)>,
}

impl Metadata {
    fn get(&self, tag: &str) -> Option<(usize, &str)> {
        self.entries
            .iter()
            .find(|(t, _, _)| t == tag)
            .map(|(_, line, value)| (*line, value.as_str()))
    }

    fn required_u32(&self, file: &str, tag: &str) -> Result<u32, ImportError> {
        let (line, value) = self
            .get(tag)
            .ok_or_else(|| ImportError::file(file, format!("the metadata lacks <{tag}>")))?;
        parse_u32(value).ok_or_else(|| {
            ImportError::new(
                file,
                format!("line {line}"),
                format!("<{tag}> {value:?} is not a whole number"),
            )
        })
    }
}

fn read_metadata<R: BufRead>(lines: &mut Lines<R>) -> Result<Metadata, ImportError> {
    let mut entries = Vec::new();
    while lines.advance()? {
        let line = lines.line();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('~') {
            continue;
        }
        let Some(rest) = trimmed.strip_prefix('<') else {
            return Err(lines.error(format!(
                "expected a metadata line `<TAG> value` or <END OF METADATA>, found {:?}",
                truncate(trimmed)
            )));
        };
        let Some((tag, value)) = rest.split_once('>') else {
            return Err(lines.error("metadata tag without a closing `>`"));
        };
        let tag = tag.trim().to_ascii_uppercase();
        if tag == "END OF METADATA" {
            return Ok(Metadata { entries });
        }
        let value = value.trim().trim_end_matches(';').trim().to_owned();
        if entries.iter().any(|(t, _, _)| *t == tag) {
            return Err(lines.error(format!("<{tag}> is given twice")));
        }
        entries.push((tag, lines.line_no, value));
    }
    Err(ImportError::file(
        lines.file.as_str(),
        "no <END OF METADATA> line: not a TNTP file, or truncated",
    ))
}

/// A row's content: everything before the first `;`, unless the line is a `~` comment.
fn data_part(line: &str) -> &str {
    let trimmed = line.trim();
    if trimmed.starts_with('~') {
        return "";
    }
    trimmed.split(';').next().unwrap_or("").trim()
}

/// Exactly `N` whitespace-separated fields, or the number found.
fn split_fields<const N: usize>(data: &str) -> Result<[&str; N], usize> {
    let mut fields = [""; N];
    let mut count = 0;
    for field in data.split_whitespace() {
        if count < N {
            fields[count] = field;
        }
        count += 1;
    }
    if count == N {
        Ok(fields)
    } else {
        Err(count)
    }
}

fn parse_u32(text: &str) -> Option<u32> {
    text.parse::<u32>().ok()
}

/// A finite number (Rust also parses `NaN` and `inf`, which no TNTP field may hold).
fn parse_f64(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn truncate(text: &str) -> String {
    text.chars().take(60).collect()
}

fn open(path: &Path) -> Result<(BufReader<File>, String), ImportError> {
    let name = path.display().to_string();
    let file = File::open(path)
        .map_err(|e| ImportError::file(name.as_str(), format!("cannot open: {e}")))?;
    Ok((BufReader::with_capacity(1 << 16, file), name))
}

/// Line-by-line reading into one reusable buffer, counting lines for error messages.
struct Lines<R> {
    reader: R,
    file: String,
    text: String,
    line_no: usize,
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R, file: &str) -> Lines<R> {
        Lines {
            reader,
            file: file.to_owned(),
            text: String::new(),
            line_no: 0,
        }
    }

    /// Moves to the next line; `false` at the end of the input.
    fn advance(&mut self) -> Result<bool, ImportError> {
        self.text.clear();
        match self.reader.read_line(&mut self.text) {
            Ok(0) => Ok(false),
            Ok(_) => {
                self.line_no += 1;
                while self.text.ends_with(['\n', '\r']) {
                    self.text.pop();
                }
                Ok(true)
            }
            Err(e) => {
                self.line_no += 1;
                Err(if e.kind() == std::io::ErrorKind::InvalidData {
                    self.error("not valid UTF-8 text")
                } else {
                    self.error(format!("cannot read: {e}"))
                })
            }
        }
    }

    /// The current line without its line ending (and without a byte-order mark on line 1).
    fn line(&self) -> &str {
        if self.line_no == 1 {
            self.text.trim_start_matches('\u{feff}')
        } else {
            &self.text
        }
    }

    /// An error at the current line.
    fn error(&self, reason: impl Into<String>) -> ImportError {
        ImportError::new(self.file.as_str(), format!("line {}", self.line_no), reason)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Entities: what `urbantwin import tntp` writes.
// ---------------------------------------------------------------------------------------------------------------

/// What to read besides the network file, for [`read_tntp`].
#[derive(Debug, Clone, Default)]
pub struct TntpOptions {
    /// A `*_node.tntp` file: node coordinates.
    pub nodes: Option<std::path::PathBuf>,
    /// A `*_flow.tntp` file: a benchmark solution (link volumes and costs).
    pub flows: Option<std::path::PathBuf>,
    /// A `*_trips.tntp` file: the trip table, summed per zone.
    pub trips: Option<std::path::PathBuf>,
    /// The reference system of projected node coordinates (`EPSG:26771`...): any [`crate::cityjson::Crs`], or one
    /// of the US state-plane systems in [`STATE_PLANE`].
    pub crs: Option<String>,
    /// The urbantwin dataset the entities belong to.
    pub dataset: Option<String>,
}

/// What [`read_tntp`] wrote.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TntpSummary {
    /// The network's name: the file stem without `_net`.
    pub network: String,
    /// `RoadSegment` entities (one per link).
    pub links: usize,
    /// `RoadNode` entities, and how many of them have a location.
    pub nodes: usize,
    pub nodes_located: usize,
    /// `TrafficZone` entities (only with a trip table).
    pub zones: usize,
    /// Links given a benchmark flow.
    pub flows: usize,
    /// How node coordinates were read: `longitude/latitude` or the CRS given.
    pub coordinates: Option<String>,
    /// Unit codes (UN/CEFACT) found in the network's README, by quantity (`time`, `distance`, `speed`).
    pub units: BTreeMap<String, String>,
    /// The README the units came from.
    pub units_from: Option<String>,
}

/// US state-plane systems in US survey feet used by TNTP node files, which [`crate::cityjson::Crs`] does not list:
/// (EPSG code, name, proj definition). Chicago-Sketch's "Illinois State Plane, feet" is NAD27 Illinois East
/// (EPSG:26771); Anaheim's would be California zone VI.
pub const STATE_PLANE: [(u32, &str, &str); 4] = [
    (
        26771,
        "NAD27 / Illinois East",
        "+proj=tmerc +lat_0=36.66666666666666 +lon_0=-88.33333333333333 +k=0.999975 +x_0=152400.3048006096 +y_0=0 \
         +ellps=clrk66 +towgs84=-8,160,176,0,0,0,0 +units=us-ft +no_defs",
    ),
    (
        3435,
        "NAD83 / Illinois East (ftUS)",
        "+proj=tmerc +lat_0=36.66666666666666 +lon_0=-88.33333333333333 +k=0.999975 +x_0=300000.0000000001 +y_0=0 \
         +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=us-ft +no_defs",
    ),
    (
        26746,
        "NAD27 / California zone VI",
        "+proj=lcc +lat_1=33.88333333333333 +lat_2=32.78333333333333 +lat_0=32.16666666666666 +lon_0=-116.25 \
         +x_0=609601.2192024384 +y_0=0 +ellps=clrk66 +towgs84=-8,160,176,0,0,0,0 +units=us-ft +no_defs",
    ),
    (
        2230,
        "NAD83 / California zone 6 (ftUS)",
        "+proj=lcc +lat_1=33.88333333333333 +lat_2=32.78333333333333 +lat_0=32.16666666666666 +lon_0=-116.25 \
         +x_0=2000000.0001016 +y_0=500000.0001016001 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=us-ft +no_defs",
    ),
];

/// The reference system of a node file: one [`crate::cityjson::Crs`] knows, else a [`STATE_PLANE`] one.
enum NodeCrs {
    Known(crate::cityjson::Crs),
    StatePlane {
        epsg: u32,
        proj: Box<(proj4rs::proj::Proj, proj4rs::proj::Proj)>,
    },
}

impl NodeCrs {
    fn parse(text: &str) -> Result<NodeCrs, String> {
        let unknown = match crate::cityjson::Crs::parse(text) {
            Ok(crs) => return Ok(NodeCrs::Known(crs)),
            Err(e) => e,
        };
        let code = text
            .trim()
            .rsplit([':', '/'])
            .next()
            .and_then(|c| c.trim().parse::<u32>().ok())
            .filter(|_| text.to_ascii_uppercase().contains("EPSG"));
        let Some(&(epsg, _, def)) = code.and_then(|c| STATE_PLANE.iter().find(|s| s.0 == c)) else {
            let extra: Vec<String> = STATE_PLANE
                .iter()
                .map(|(c, n, _)| format!("{c} ({n})"))
                .collect();
            return Err(format!(
                "{unknown}; for TNTP node files also EPSG:{}",
                extra.join(", ")
            ));
        };
        let src = proj4rs::proj::Proj::from_proj_string(def)
            .map_err(|e| format!("bad projection for EPSG:{epsg}: {e}"))?;
        let dst = proj4rs::proj::Proj::from_proj_string("+proj=longlat +datum=WGS84 +no_defs")
            .map_err(|e| format!("bad projection for WGS84: {e}"))?;
        Ok(NodeCrs::StatePlane {
            epsg,
            proj: Box::new((src, dst)),
        })
    }

    fn name(&self) -> String {
        match self {
            NodeCrs::Known(crs) => crs.name(),
            NodeCrs::StatePlane { epsg, .. } => format!("EPSG:{epsg}"),
        }
    }

    fn to_wgs84(&self, x: f64, y: f64) -> Result<(f64, f64), String> {
        let (lon, lat) = match self {
            NodeCrs::Known(crs) => return crs.to_wgs84(x, y),
            NodeCrs::StatePlane { proj, .. } => {
                let mut p = (x, y, 0.0);
                proj4rs::transform::transform(&proj.0, &proj.1, &mut p).map_err(|e| {
                    format!("cannot transform ({x}, {y}) from {}: {e}", self.name())
                })?;
                (p.0.to_degrees(), p.1.to_degrees())
            }
        };
        if !(lon.is_finite() && lat.is_finite() && lon.abs() <= 180.0 && lat.abs() <= 90.0) {
            return Err(format!(
                "({x}, {y}) does not map to a valid longitude/latitude under {} (wrong CRS?)",
                self.name()
            ));
        }
        Ok((lon, lat))
    }
}

/// The UN/CEFACT unit codes a TNTP network's README states in its `## Units` section (`Time: minutes`,
/// `Distance: miles`, `Speed: feet per minute`); quantities left blank or in units without a code are absent.
fn readme_units(readme: &str) -> BTreeMap<String, String> {
    let mut units = BTreeMap::new();
    let mut in_units = false;
    for line in readme.lines() {
        let line = line.trim();
        if let Some(heading) = line.strip_prefix("##") {
            in_units = heading.trim().eq_ignore_ascii_case("units");
            continue;
        }
        let Some((quantity, unit)) = line.split_once(':').filter(|_| in_units) else {
            continue;
        };
        let unit = unit.trim().trim_end_matches('.').to_ascii_lowercase();
        let quantity = quantity
            .trim()
            .trim_start_matches(['-', '*'])
            .trim()
            .to_ascii_lowercase();
        let code = match (quantity.as_str(), unit.as_str()) {
            ("time", "minutes" | "minute" | "min") => "MIN",
            ("time", "hours" | "hour" | "h") => "HUR",
            ("time", "seconds" | "second" | "s") => "SEC",
            ("distance", "feet" | "foot" | "ft") => "FOT",
            ("distance", "miles" | "mile" | "mi") => "SMI",
            ("distance", "kilometers" | "kilometres" | "km") => "KMT",
            ("distance", "meters" | "metres" | "m") => "MTR",
            ("speed", "feet per minute" | "ft/min") => "FR",
            ("speed", "miles per hour" | "mph") => "HM",
            ("speed", "kilometers per hour" | "kilometres per hour" | "km/h" | "kmh") => "KMH",
            ("speed", "meters per second" | "metres per second" | "m/s") => "MTS",
            _ => continue,
        };
        units.insert(quantity, code.to_string());
    }
    units
}

/// The network name of a `<network>_net.tntp` path.
pub fn network_name(path: &Path) -> String {
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('.').next())
        .unwrap_or("network");
    let lower = stem.to_ascii_lowercase();
    match lower.strip_suffix("_net") {
        Some(rest) if !rest.is_empty() => stem[..rest.len()].to_string(),
        _ => stem.to_string(),
    }
}

/// Reads a TNTP network (and optionally its node, flow and trip files) and hands entities to `sink`: one `RoadNode`
/// per node, one `RoadSegment` per link, one `TrafficZone` per zone when a trip table is given.
///
/// Ids: `urn:ngsi-ld:RoadNode:<network>:<node>`, `urn:ngsi-ld:RoadSegment:<network>:<init>-<term>` (a second link
/// between the same nodes gets `-2`, and so on), `urn:ngsi-ld:TrafficZone:<network>:<zone>`, where `<network>` is
/// the file stem without `_net`.
///
/// - `RoadNode`: `location` (Point) when the node file gives it; `isZoneCentroid` (node ≤ `<NUMBER OF ZONES>`) and
///   `allowsThroughTraffic` (node ≥ `<FIRST THRU NODE>`).
/// - `RoadSegment`: `refStartPoint`, `refEndPoint` (Relationships to the RoadNodes), `capacity`, `length`,
///   `freeFlowTime`, `b`, `power` (the BPR function `t = freeFlowTime · (1 + b · (v / capacity)^power)`),
///   `speedLimit` (absent when the file says 0), `toll`, `linkType`; from a flow file `benchmarkFlow` and
///   `benchmarkCost`; `location`, a LineString from the start node to the end node, when both have coordinates.
/// - `TrafficZone`: `productions` and `attractions` (the row and column sums of the trip table, intrazonal trips
///   included), `refRoadNode` (its centroid node) and the centroid's `location`.
///
/// Values are the file's own: nothing is converted. `length`, `freeFlowTime`, `benchmarkCost` and `speedLimit` carry
/// a `unitCode` only when the `## Units` section of the `README.md` beside the network file names the unit (the
/// layout of the TNTP repository); capacities, tolls and trips never do, as TNTP does not state their units.
///
/// Node coordinates in degrees are used as they are; coordinates with |x| > 180 or |y| > 90 are projected and need
/// [`TntpOptions::crs`] (an error otherwise, never a guess).
pub fn read_tntp(
    net_path: &Path,
    options: &TntpOptions,
    sink: &mut dyn FnMut(twin_model::Entity) -> Result<(), ImportError>,
) -> Result<TntpSummary, ImportError> {
    use serde_json::{json, Value};

    let net_file = net_path.display().to_string();
    let net = read_net(net_path)?;
    let network = network_name(net_path);
    let mut summary = TntpSummary {
        network: network.clone(),
        ..Default::default()
    };
    if let Some(readme) = net_path.parent().map(|d| d.join("README.md")) {
        if let Ok(text) = std::fs::read_to_string(&readme) {
            summary.units = readme_units(&text);
            summary.units_from = Some(readme.display().to_string());
        }
    }

    // Node coordinates, as WGS84 longitude/latitude, indexed by node number.
    let mut coords: Vec<Option<(f64, f64)>> = vec![None; net.nodes as usize + 1];
    let crs = options
        .crs
        .as_deref()
        .map(NodeCrs::parse)
        .transpose()
        .map_err(|e| {
            ImportError::file(
                options
                    .nodes
                    .as_ref()
                    .map_or(net_file.clone(), |p| p.display().to_string()),
                e,
            )
        })?;
    if crs.is_some() && options.nodes.is_none() {
        return Err(ImportError::file(
            net_file,
            "a CRS was given but no node file: the CRS is that of the node coordinates",
        ));
    }
    if let Some(path) = &options.nodes {
        let file = path.display().to_string();
        let nodes = read_nodes(path)?;
        if crs.is_none() {
            if let Some(n) = nodes.iter().find(|n| n.x.abs() > 180.0 || n.y.abs() > 90.0) {
                return Err(ImportError::file(
                    file,
                    format!(
                        "node {} is at ({}, {}), which is not longitude/latitude in degrees: the coordinates are \
                         projected, so name their reference system with --crs (Chicago-Sketch: EPSG:26771, Illinois \
                         State Plane East, US feet)",
                        n.id, n.x, n.y
                    ),
                ));
            }
        }
        for n in &nodes {
            if n.id > net.nodes {
                return Err(ImportError::file(
                    file.as_str(),
                    format!(
                        "node {} is not in the network ({net_file} has <NUMBER OF NODES> {})",
                        n.id, net.nodes
                    ),
                ));
            }
            let (lon, lat) = match &crs {
                Some(crs) => crs
                    .to_wgs84(n.x, n.y)
                    .map_err(|e| ImportError::file(file.as_str(), format!("node {}: {e}", n.id)))?,
                None => (n.x, n.y),
            };
            let round = |v: f64| (v * 1e7).round() / 1e7;
            coords[n.id as usize] = Some((round(lon), round(lat)));
        }
        summary.coordinates = Some(match &crs {
            Some(crs) => crs.name(),
            None => "longitude/latitude".into(),
        });
    }

    // Benchmark flows, matched to links by (from, to) in file order.
    let mut link_flows: Vec<Option<(f64, f64)>> = vec![None; net.links.len()];
    if let Some(path) = &options.flows {
        let mut by_pair: HashMap<(u32, u32), Vec<usize>> = HashMap::new();
        for (i, l) in net.links.iter().enumerate().rev() {
            by_pair.entry((l.init, l.term)).or_default().push(i);
        }
        for f in read_flows(path)? {
            let link = by_pair.get_mut(&(f.from, f.to)).and_then(Vec::pop).ok_or_else(|| {
                ImportError::file(
                    path.display().to_string(),
                    format!(
                        "the flow from {} to {} matches no link of {net_file} (or one already given a flow)",
                        f.from, f.to
                    ),
                )
            })?;
            link_flows[link] = Some((f.volume, f.cost));
            summary.flows += 1;
        }
    }

    let trips = match &options.trips {
        None => None,
        Some(path) => {
            let trips = read_trips(path)?;
            if trips.zones != net.zones {
                return Err(ImportError::file(
                    path.display().to_string(),
                    format!(
                        "<NUMBER OF ZONES> {} differs from the network's {} ({net_file})",
                        trips.zones, net.zones
                    ),
                ));
            }
            Some(trips)
        }
    };

    let now = chrono::Utc::now();
    let prov = twin_model::Provenance {
        dataset: options.dataset.clone(),
        source: Some(net_file.clone()),
        channel: Some("import:tntp".into()),
    };
    let ctx = twin_model::Context::core();
    let mut emit = |doc: Value, at: String| -> Result<(), ImportError> {
        let e = twin_model::ngsi::parse_entity(&doc, &ctx, now, &prov).map_err(|e| {
            ImportError::new(
                net_file.as_str(),
                at,
                format!("not a valid entity: {}", e.detail),
            )
        })?;
        sink(e)
    };
    let prop = |v: Value| json!({"type": "Property", "value": v});
    let prop_unit = |v: f64, quantity: &str| match summary.units.get(quantity) {
        Some(code) => json!({"type": "Property", "value": v, "unitCode": code}),
        None => json!({"type": "Property", "value": v}),
    };
    let point =
        |n: u32| coords[n as usize].map(|(x, y)| json!({"type": "Point", "coordinates": [x, y]}));
    let node_id = |n: u32| crate::cityjson::urn("RoadNode", &format!("{network}:{n}"));

    for n in 1..=net.nodes {
        let mut doc = json!({
            "id": node_id(n),
            "type": "RoadNode",
            "isZoneCentroid": prop(json!(n <= net.zones)),
            "allowsThroughTraffic": prop(json!(n >= net.first_thru_node)),
        });
        if let Some(p) = point(n) {
            doc["location"] = json!({"type": "GeoProperty", "value": p});
            summary.nodes_located += 1;
        }
        emit(doc, format!("node {n}"))?;
        summary.nodes += 1;
    }

    let mut seen: HashMap<(u32, u32), u32> = HashMap::new();
    for (i, l) in net.links.iter().enumerate() {
        let count = seen.entry((l.init, l.term)).or_insert(0);
        *count += 1;
        let key = match *count {
            1 => format!("{network}:{}-{}", l.init, l.term),
            k => format!("{network}:{}-{}-{k}", l.init, l.term),
        };
        let mut doc = json!({
            "id": crate::cityjson::urn("RoadSegment", &key),
            "type": "RoadSegment",
            "refStartPoint": {"type": "Relationship", "object": node_id(l.init)},
            "refEndPoint": {"type": "Relationship", "object": node_id(l.term)},
            "capacity": prop(json!(l.capacity)),
            "length": prop_unit(l.length, "distance"),
            "freeFlowTime": prop_unit(l.free_flow_time, "time"),
            "b": prop(json!(l.b)),
            "power": prop(json!(l.power)),
            "toll": prop(json!(l.toll)),
            "linkType": prop(json!(l.link_type)),
        });
        if l.speed > 0.0 {
            doc["speedLimit"] = prop_unit(l.speed, "speed");
        }
        if let Some((volume, cost)) = link_flows[i] {
            doc["benchmarkFlow"] = prop(json!(volume));
            doc["benchmarkCost"] = prop_unit(cost, "time");
        }
        if let (Some(a), Some(b)) = (coords[l.init as usize], coords[l.term as usize]) {
            doc["location"] = json!({"type": "GeoProperty",
                                     "value": {"type": "LineString", "coordinates": [[a.0, a.1], [b.0, b.1]]}});
        }
        emit(doc, format!("link {} ({} → {})", i + 1, l.init, l.term))?;
        summary.links += 1;
    }

    if let Some(trips) = trips {
        let zones = trips.zones as usize;
        let (mut productions, mut attractions) = (vec![0.0; zones + 1], vec![0.0; zones + 1]);
        for &(o, d, v) in &trips.od {
            productions[o as usize] += v;
            attractions[d as usize] += v;
        }
        for z in 1..=trips.zones {
            let mut doc = json!({
                "id": crate::cityjson::urn("TrafficZone", &format!("{network}:{z}")),
                "type": "TrafficZone",
                "productions": prop(json!(productions[z as usize])),
                "attractions": prop(json!(attractions[z as usize])),
                "refRoadNode": {"type": "Relationship", "object": node_id(z)},
            });
            if let Some(p) = point(z) {
                doc["location"] = json!({"type": "GeoProperty", "value": p});
            }
            emit(doc, format!("zone {z}"))?;
            summary.zones += 1;
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The shared benchmark data, or `None` (with the reason printed) when it is absent outside CI.
    fn data_dir() -> Option<PathBuf> {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
        let tntp = data.join("tntp");
        if tntp.is_dir() {
            return Some(tntp);
        }
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "CI=true but the TNTP test data is missing at {}",
                tntp.display()
            );
        }
        eprintln!("skipping: TNTP test data not found at {}", tntp.display());
        None
    }

    const HEADER: &str = "<NUMBER OF ZONES> 2\n<NUMBER OF NODES> 3\n<FIRST THRU NODE> 1\n<NUMBER OF LINKS> 2\n\
                          <END OF METADATA>\n\n~ init term capacity length fft b power speed toll type ;\n";

    fn net(rows: &str) -> Result<TntpNetwork, ImportError> {
        parse_net(format!("{HEADER}{rows}").as_bytes(), "t_net.tntp")
    }

    fn trips(text: &str) -> Result<TntpTrips, ImportError> {
        parse_trips(text.as_bytes(), "t_trips.tntp")
    }

    fn err_text<T: std::fmt::Debug>(r: Result<T, ImportError>) -> String {
        r.expect_err("should fail").to_string()
    }

    #[test]
    fn siouxfalls_network() {
        let Some(dir) = data_dir() else { return };
        let net = read_net(dir.join("SiouxFalls/SiouxFalls_net.tntp")).expect("SiouxFalls net");
        assert_eq!(
            (net.zones, net.nodes, net.first_thru_node, net.links.len()),
            (24, 24, 1, 76)
        );
        let first = net.links[0];
        assert_eq!(
            first,
            TntpLink {
                init: 1,
                term: 2,
                capacity: 25900.20064,
                length: 6.0,
                free_flow_time: 6.0,
                b: 0.15,
                power: 4.0,
                speed: 0.0,
                toll: 0.0,
                link_type: 1
            }
        );
        let last = net.links[75];
        assert_eq!((last.init, last.term, last.free_flow_time), (24, 23, 2.0));
    }

    #[test]
    fn siouxfalls_trips_nodes_and_flows() {
        let Some(dir) = data_dir() else { return };
        let trips =
            read_trips(dir.join("SiouxFalls/SiouxFalls_trips.tntp")).expect("SiouxFalls trips");
        assert_eq!(trips.zones, 24);
        assert_eq!(trips.od.len(), 24 * 24);
        assert!(
            (trips.total_flow - 360_600.0).abs() < 1e-6,
            "{}",
            trips.total_flow
        );
        assert_eq!(trips.od[9], (1, 10, 1300.0));
        let nodes =
            read_nodes(dir.join("SiouxFalls/SiouxFalls_node.tntp")).expect("SiouxFalls nodes");
        assert_eq!(nodes.len(), 24);
        assert_eq!(
            nodes[0],
            TntpNode {
                id: 1,
                x: -96.77041974,
                y: 43.61282792
            }
        );
        let flows =
            read_flows(dir.join("SiouxFalls/SiouxFalls_flow.tntp")).expect("SiouxFalls flows");
        assert_eq!(flows.len(), 76);
        assert_eq!((flows[0].from, flows[0].to), (1, 2));
        assert!((flows[0].volume - 4494.6576464564205).abs() < 1e-9);
    }

    #[test]
    fn benchmark_networks_match_their_readmes() {
        let Some(dir) = data_dir() else { return };
        // (folder, file prefix, nodes, links, zones, total trips)
        let cases = [
            ("Anaheim", "Anaheim", 416, 914, 38, 104_694.40),
            ("Barcelona", "Barcelona", 1020, 2522, 110, 184_679.561),
            (
                "Chicago-Sketch",
                "ChicagoSketch",
                933,
                2950,
                387,
                1_260_907.44,
            ),
        ];
        for (folder, prefix, nodes, links, zones, total) in cases {
            let base = dir.join(folder);
            let net = read_net(base.join(format!("{prefix}_net.tntp"))).expect(folder);
            assert_eq!(
                (net.nodes, net.links.len(), net.zones),
                (nodes, links, zones),
                "{folder}"
            );
            let max_node = net.links.iter().map(|l| l.init.max(l.term)).max();
            assert_eq!(max_node, Some(nodes), "{folder}");
            let trips = read_trips(base.join(format!("{prefix}_trips.tntp"))).expect(folder);
            assert_eq!(trips.zones, zones, "{folder}");
            assert!(
                (trips.total_flow - total).abs() < 1e-3,
                "{folder}: {}",
                trips.total_flow
            );
            let flows = read_flows(base.join(format!("{prefix}_flow.tntp"))).expect(folder);
            assert_eq!(flows.len(), links, "{folder}");
            assert!(
                flows
                    .iter()
                    .zip(&net.links)
                    .all(|(f, l)| (f.from, f.to) == (l.init, l.term)),
                "{folder}"
            );
        }
        assert_eq!(
            read_net(dir.join("Anaheim/Anaheim_net.tntp"))
                .expect("Anaheim")
                .first_thru_node,
            39
        );
        let chicago =
            read_nodes(dir.join("Chicago-Sketch/ChicagoSketch_node.tntp")).expect("Chicago nodes");
        assert_eq!(chicago.len(), 933);
    }

    #[test]
    fn parses_a_small_network_from_a_string() {
        let n = net("\t1\t2\t900\t3\t3\t0.15\t4\t50\t0\t1\t;\n2 3 1e3 1.5 2 0 0 0 -1 2 ;\n")
            .expect("valid");
        assert_eq!(n.links.len(), 2);
        assert_eq!(n.links[1].capacity, 1000.0);
        assert_eq!(n.links[1].toll, -1.0);
        assert_eq!(n.links[1].link_type, 2);
    }

    #[test]
    fn network_errors_name_the_line_and_the_reason() {
        let ok = "1 2 900 3 3 0.15 4 0 0 1 ;\n";
        let e = err_text(net(&format!("{ok}2 3 -5 3 3 0.15 4 0 0 1 ;\n")));
        assert_eq!(e, "t_net.tntp: line 9: capacity is negative (-5)");
        let e = err_text(net(&format!("{ok}2 3 9x0 3 3 0.15 4 0 0 1 ;\n")));
        assert!(
            e.contains("line 9") && e.contains("capacity \"9x0\" is not a finite number"),
            "{e}"
        );
        let e = err_text(net(&format!("{ok}2 3 NaN 3 3 0.15 4 0 0 1 ;\n")));
        assert!(e.contains("not a finite number"), "{e}");
        let e = err_text(net(&format!("{ok}2 3 900 3 ;\n")));
        assert!(
            e.contains("line 9") && e.contains("expected 10 fields") && e.contains("found 4"),
            "{e}"
        );
        let e = err_text(net(&format!("{ok}2 7 900 3 3 0.15 4 0 0 1 ;\n")));
        assert!(e.contains("term node 7 is outside 1..=3"), "{e}");
        let e = err_text(net(&format!("{ok}0 2 900 3 3 0.15 4 0 0 1 ;\n")));
        assert!(e.contains("init node 0"), "{e}");
        let e = err_text(net(&format!("{ok}2 3 900 3 3 0.15 4 0 0 road ;\n")));
        assert!(e.contains("link_type \"road\" is not an integer"), "{e}");
        let e = err_text(net(ok));
        assert_eq!(e, "t_net.tntp: found 1 links but <NUMBER OF LINKS> says 2");
        let e = err_text(net(&format!("{ok}{ok}{ok}")));
        assert!(e.contains("found 3 links"), "{e}");
    }

    #[test]
    fn metadata_errors() {
        let e = err_text(parse_net(
            "<NUMBER OF ZONES> 2\n1 2 3\n".as_bytes(),
            "x.tntp",
        ));
        assert!(
            e.contains("line 2") && e.contains("expected a metadata line"),
            "{e}"
        );
        let e = err_text(parse_net("<NUMBER OF ZONES> 2\n".as_bytes(), "x.tntp"));
        assert!(e.contains("no <END OF METADATA>"), "{e}");
        let e = err_text(parse_net(
            "<NUMBER OF ZONES> 2\n<END OF METADATA>\n".as_bytes(),
            "x.tntp",
        ));
        assert!(e.contains("lacks <NUMBER OF NODES>"), "{e}");
        let text = "<NUMBER OF ZONES> two\n<NUMBER OF NODES> 3\n<FIRST THRU NODE> 1\n<NUMBER OF LINKS> 0\n\
                    <END OF METADATA>\n";
        let e = err_text(parse_net(text.as_bytes(), "x.tntp"));
        assert_eq!(
            e,
            "x.tntp: line 1: <NUMBER OF ZONES> \"two\" is not a whole number"
        );
        let text =
            "<NUMBER OF ZONES> 5\n<NUMBER OF NODES> 3\n<FIRST THRU NODE> 1\n<NUMBER OF LINKS> 0\n\
                    <END OF METADATA>\n";
        assert!(
            err_text(parse_net(text.as_bytes(), "x.tntp")).contains("exceeds <NUMBER OF NODES>")
        );
        let e = err_text(parse_net(&b"<NUMBER OF ZONES> 2\n\xff\xfe\n"[..], "x.tntp"));
        assert_eq!(e, "x.tntp: line 2: not valid UTF-8 text");
        let e = err_text(read_net("/nonexistent/urbantwin/x_net.tntp"));
        assert!(
            e.starts_with("/nonexistent/urbantwin/x_net.tntp: cannot open"),
            "{e}"
        );
    }

    #[test]
    fn trip_tables() {
        let head = "<NUMBER OF ZONES> 3\n<TOTAL OD FLOW> 60.5\n<END OF METADATA>\n\n~ a comment\n";
        let t = trips(&format!(
            "{head}Origin \t1\n 2 : 10.0; 3 : 20.5;\nOrigin 3\n1 : 30 ;\n"
        ))
        .expect("valid");
        assert_eq!(t.od, vec![(1, 2, 10.0), (1, 3, 20.5), (3, 1, 30.0)]);
        assert_eq!((t.zones, t.total_flow), (3, 60.5));
        // No stated total: the sum is taken as is; no trailing newline either.
        let t = trips("<NUMBER OF ZONES> 2\n<END OF METADATA>\nOrigin 2\n1 : 4;").expect("valid");
        assert_eq!(t.total_flow, 4.0);

        let e = err_text(trips(&format!("{head}1 : 30 ;\n")));
        assert!(
            e.contains("line 6") && e.contains("before any `Origin`"),
            "{e}"
        );
        let e = err_text(trips(&format!("{head}Origin 4\n")));
        assert!(e.contains("origin 4 is outside 1..=3"), "{e}");
        let e = err_text(trips(&format!("{head}Origin 1\n2 : 10; 9 : 1;\n")));
        assert!(
            e.contains("line 7") && e.contains("destination 9 is outside"),
            "{e}"
        );
        let e = err_text(trips(&format!("{head}Origin 1\n2 : ten;\n")));
        assert!(
            e.contains("flow \"ten\" to 2 is not a finite number"),
            "{e}"
        );
        let e = err_text(trips(&format!("{head}Origin 1\n2 : -1;\n")));
        assert!(e.contains("negative"), "{e}");
        let e = err_text(trips(&format!("{head}Origin 1\n2 10;\n")));
        assert!(e.contains("expected `destination : flow`"), "{e}");
        let e = err_text(trips(&format!("{head}Origin 1\n2 : 10; 2 : 3;\n")));
        assert!(e.contains("flow 1 → 2 is given twice"), "{e}");
        let e = err_text(trips(&format!("{head}Origin 1\n2 : 10;\nOrigin 1\n")));
        assert!(e.contains("origin 1 appears twice"), "{e}");
        let e = err_text(trips(&format!("{head}Origin 1\n2 : 10;\n")));
        assert_eq!(
            e,
            "t_trips.tntp: flows add up to 10 but <TOTAL OD FLOW> says 60.5"
        );
        let e = err_text(trips(&format!("{head}Origin\n")));
        assert!(e.contains("expected `Origin <zone>`"), "{e}");
    }

    #[test]
    fn node_and_flow_files() {
        let nodes = parse_nodes(
            "Node\tX\tY\t;\n1\t-96.7\t43.6\t;\n2 5 6\n".as_bytes(),
            "n.tntp",
        )
        .expect("valid");
        assert_eq!(
            nodes,
            vec![
                TntpNode {
                    id: 1,
                    x: -96.7,
                    y: 43.6
                },
                TntpNode {
                    id: 2,
                    x: 5.0,
                    y: 6.0
                }
            ]
        );
        let e = err_text(parse_nodes(
            "Node X Y ;\n1 2 3 ;\n1 4 5 ;\n".as_bytes(),
            "n.tntp",
        ));
        assert_eq!(e, "n.tntp: line 3: node 1 appears twice");
        let e = err_text(parse_nodes("Node X Y ;\n1 2 ;\n".as_bytes(), "n.tntp"));
        assert!(e.contains("expected 3 fields (node x y), found 2"), "{e}");
        let e = err_text(parse_nodes("1 2 3 ;\nNode X Y ;\n".as_bytes(), "n.tntp"));
        assert!(
            e.contains("line 2") && e.contains("not a positive node number"),
            "{e}"
        );

        let flows =
            parse_flows("From To Volume Cost\n1 2 10.5 3\n".as_bytes(), "f.tntp").expect("valid");
        assert_eq!(
            flows,
            vec![TntpFlow {
                from: 1,
                to: 2,
                volume: 10.5,
                cost: 3.0
            }]
        );
        let e = err_text(parse_flows(
            "From To Volume Cost\n1 2 -3 3\n".as_bytes(),
            "f.tntp",
        ));
        assert!(
            e.contains("line 2") && e.contains("volume is negative"),
            "{e}"
        );
        let e = err_text(parse_flows(
            "From To Volume Cost\n1 2 3 x\n".as_bytes(),
            "f.tntp",
        ));
        assert!(e.contains("cost \"x\" is not a finite number"), "{e}");
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn kv(e: &twin_model::Entity) -> serde_json::Value {
        let o = twin_model::ngsi::RenderOptions {
            format: twin_model::ngsi::Format::KeyValues,
            ..Default::default()
        };
        twin_model::ngsi::render_entity(e, &twin_model::Context::core(), &o)
    }

    fn import(
        net: &Path,
        options: &TntpOptions,
    ) -> Result<(TntpSummary, Vec<serde_json::Value>), ImportError> {
        let mut out = Vec::new();
        let s = read_tntp(net, options, &mut |e| {
            out.push(kv(&e));
            Ok(())
        })?;
        Ok((s, out))
    }

    fn find<'a>(es: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
        es.iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("no {id}"))
    }

    /// Three nodes (two zones), three links (two of them parallel), with units in a README.
    fn tiny(dir: &Path) -> PathBuf {
        write(
            dir,
            "README.md",
            "# Tiny\n\n## Units\nTime: minutes\nDistance: miles \nSpeed: \nCost: cents\n\n## Known Issues\nTime: hours\n",
        );
        write(
            dir,
            "Tiny_net.tntp",
            "<NUMBER OF ZONES> 2\n<NUMBER OF NODES> 3\n<FIRST THRU NODE> 3\n<NUMBER OF LINKS> 3\n<END OF METADATA>\n\
             ~ init term cap len fft b power speed toll type ;\n\
             1 3 900 1.5 3 0.15 4 30 0 1 ;\n3 2 800 2 4 0.15 4 0 5 2 ;\n3 2 700 2.5 5 0.15 4 0 0 2 ;\n",
        )
    }

    #[test]
    fn network_names() {
        assert_eq!(
            network_name(Path::new("/d/SiouxFalls_net.tntp")),
            "SiouxFalls"
        );
        assert_eq!(
            network_name(Path::new("ChicagoSketch_NET.tntp")),
            "ChicagoSketch"
        );
        assert_eq!(network_name(Path::new("_net.tntp")), "_net");
        assert_eq!(network_name(Path::new("roads.tntp")), "roads");
    }

    #[test]
    fn units_come_from_the_readme_units_section() {
        let u = readme_units("## Units\nTime: minutes\nDistance: feet \nSpeed: feet per minute\nCost: \n## Other\nDistance: km\n");
        assert_eq!(
            u.into_iter().collect::<Vec<_>>(),
            [
                ("distance".to_string(), "FOT".to_string()),
                ("speed".into(), "FR".into()),
                ("time".into(), "MIN".into())
            ]
        );
        assert!(readme_units("## Units\nTime:\nDistance: \n").is_empty());
        assert!(
            readme_units("Time: minutes\n").is_empty(),
            "outside the Units section"
        );
    }

    #[test]
    fn entities_of_a_small_network() {
        let dir = tempfile::tempdir().unwrap();
        let net = tiny(dir.path());
        let nodes = write(
            dir.path(),
            "Tiny_node.tntp",
            "Node X Y ;\n1 -96.7 43.6 ;\n2 -96.8 43.5 ;\n3 -96.75 43.55 ;\n",
        );
        let flows = write(
            dir.path(),
            "Tiny_flow.tntp",
            "From To Volume Cost\n1 3 100 3.5\n3 2 40 4.1\n3 2 60 5.2\n",
        );
        let trips = write(
            dir.path(),
            "Tiny_trips.tntp",
            "<NUMBER OF ZONES> 2\n<TOTAL OD FLOW> 100\n<END OF METADATA>\nOrigin 1\n1 : 5; 2 : 80;\nOrigin 2\n1 : 15;\n",
        );
        let options = TntpOptions {
            nodes: Some(nodes),
            flows: Some(flows),
            trips: Some(trips),
            ..Default::default()
        };
        let (s, es) = import(&net, &options).expect("valid");
        assert_eq!(
            (
                s.network.as_str(),
                s.nodes,
                s.nodes_located,
                s.links,
                s.zones,
                s.flows
            ),
            ("Tiny", 3, 3, 3, 2, 3)
        );
        assert_eq!(s.coordinates.as_deref(), Some("longitude/latitude"));
        assert_eq!(es.len(), 3 + 3 + 2);

        let n1 = find(&es, "urn:ngsi-ld:RoadNode:Tiny:1");
        assert_eq!(n1["type"], "RoadNode");
        assert_eq!(
            n1["location"]["coordinates"],
            serde_json::json!([-96.7, 43.6])
        );
        assert_eq!(
            (&n1["isZoneCentroid"], &n1["allowsThroughTraffic"]),
            (&true.into(), &false.into())
        );
        assert_eq!(
            find(&es, "urn:ngsi-ld:RoadNode:Tiny:3")["allowsThroughTraffic"],
            true
        );

        let l = find(&es, "urn:ngsi-ld:RoadSegment:Tiny:1-3");
        assert_eq!(l["refStartPoint"], "urn:ngsi-ld:RoadNode:Tiny:1");
        assert_eq!(l["refEndPoint"], "urn:ngsi-ld:RoadNode:Tiny:3");
        assert_eq!(
            (&l["capacity"], &l["length"], &l["freeFlowTime"]),
            (&900.0.into(), &1.5.into(), &3.0.into())
        );
        assert_eq!(
            (&l["b"], &l["power"], &l["speedLimit"], &l["linkType"]),
            (&0.15.into(), &4.0.into(), &30.0.into(), &1.into())
        );
        assert_eq!(
            (&l["benchmarkFlow"], &l["benchmarkCost"]),
            (&100.0.into(), &3.5.into())
        );
        assert_eq!(
            l["location"],
            serde_json::json!({"type": "LineString", "coordinates": [[-96.7, 43.6], [-96.75, 43.55]]})
        );
        // parallel links: the second gets a suffix, and the flows go to them in file order
        let a = find(&es, "urn:ngsi-ld:RoadSegment:Tiny:3-2");
        let b = find(&es, "urn:ngsi-ld:RoadSegment:Tiny:3-2-2");
        assert_eq!(
            (&a["capacity"], &a["benchmarkFlow"], &a["toll"]),
            (&800.0.into(), &40.0.into(), &5.0.into())
        );
        assert_eq!(
            (&b["capacity"], &b["benchmarkFlow"]),
            (&700.0.into(), &60.0.into())
        );
        assert!(a.get("speedLimit").is_none(), "speed 0 means not given");

        let z1 = find(&es, "urn:ngsi-ld:TrafficZone:Tiny:1");
        assert_eq!(
            (&z1["productions"], &z1["attractions"]),
            (&85.0.into(), &20.0.into())
        );
        assert_eq!(z1["refRoadNode"], "urn:ngsi-ld:RoadNode:Tiny:1");
        assert_eq!(
            z1["location"]["coordinates"],
            serde_json::json!([-96.7, 43.6])
        );
        let z2 = find(&es, "urn:ngsi-ld:TrafficZone:Tiny:2");
        assert_eq!(
            (&z2["productions"], &z2["attractions"]),
            (&15.0.into(), &80.0.into())
        );
    }

    #[test]
    fn unit_codes_only_where_the_readme_names_the_unit() {
        let dir = tempfile::tempdir().unwrap();
        let net = tiny(dir.path());
        let mut units = None;
        read_tntp(&net, &TntpOptions::default(), &mut |e| {
            if e.id.ends_with("1-3") {
                units = Some(e);
            }
            Ok(())
        })
        .expect("valid");
        let e = units.expect("link 1-3");
        let unit = |name: &str| {
            let a = &e.attrs[&format!("https://uri.etsi.org/ngsi-ld/default-context/{name}")][0];
            a.unit_code.clone()
        };
        assert_eq!(unit("length").as_deref(), Some("SMI"));
        assert_eq!(unit("freeFlowTime").as_deref(), Some("MIN"));
        assert_eq!(unit("speedLimit"), None, "Speed: is blank");
        assert_eq!(unit("capacity"), None);
        assert!(
            !e.attrs.keys().any(|k| k.ends_with("/location")),
            "no node file"
        );
    }

    #[test]
    fn projected_nodes_need_a_crs() {
        let dir = tempfile::tempdir().unwrap();
        let net = tiny(dir.path());
        let nodes = write(
            dir.path(),
            "Tiny_node.tntp",
            "node X Y ;\n1 690309 1976022 ;\n2 683649 1973025 ;\n3 693306 1963368 ;\n",
        );
        let options = TntpOptions {
            nodes: Some(nodes.clone()),
            ..Default::default()
        };
        let e = import(&net, &options).expect_err("projected").to_string();
        assert!(
            e.starts_with(&format!(
                "{}: node 1 is at (690309, 1976022)",
                nodes.display()
            )) && e.contains("--crs"),
            "{e}"
        );
        let with = |crs: &str| TntpOptions {
            crs: Some(crs.into()),
            ..options.clone()
        };
        let (s, es) = import(&net, &with("EPSG:26771")).expect("state plane");
        assert_eq!(s.coordinates.as_deref(), Some("EPSG:26771"));
        let c = &find(&es, "urn:ngsi-ld:RoadNode:Tiny:1")["location"]["coordinates"];
        let (lon, lat) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
        // north of the Loop, near the lake shore
        assert!(
            (-87.8..-87.6).contains(&lon) && (42.0..42.15).contains(&lat),
            "{lon} {lat}"
        );
        let e = import(
            &net,
            &TntpOptions {
                nodes: None,
                ..with("EPSG:26771")
            },
        )
        .expect_err("a CRS without nodes")
        .to_string();
        assert!(e.contains("a CRS was given but no node file"), "{e}");
        let e = import(&net, &with("EPSG:2056"))
            .expect_err("unsupported")
            .to_string();
        assert!(
            e.contains("unsupported") && e.contains("26771 (NAD27 / Illinois East)"),
            "{e}"
        );
        // a CRS that does not fit the numbers
        let e = import(&net, &with("EPSG:4326"))
            .expect_err("not degrees")
            .to_string();
        assert!(e.contains("node 1:"), "{e}");
        // a node outside the network
        write(
            dir.path(),
            "Tiny_node.tntp",
            "node X Y ;\n1 1 1 ;\n4 1 1 ;\n",
        );
        let e = import(
            &net,
            &TntpOptions {
                nodes: Some(nodes),
                ..Default::default()
            },
        )
        .expect_err("node 4")
        .to_string();
        assert!(e.contains("node 4 is not in the network"), "{e}");
    }

    #[test]
    fn flows_and_trips_must_fit_the_network() {
        let dir = tempfile::tempdir().unwrap();
        let net = tiny(dir.path());
        let flows = write(
            dir.path(),
            "f.tntp",
            "From To Volume Cost\n1 3 100 3.5\n2 1 4 4\n",
        );
        let e = import(
            &net,
            &TntpOptions {
                flows: Some(flows),
                ..Default::default()
            },
        )
        .expect_err("2 → 1")
        .to_string();
        assert!(e.contains("the flow from 2 to 1 matches no link"), "{e}");
        let flows = write(
            dir.path(),
            "f.tntp",
            "From To Volume Cost\n1 3 100 3.5\n1 3 100 3.5\n",
        );
        assert!(import(
            &net,
            &TntpOptions {
                flows: Some(flows),
                ..Default::default()
            }
        )
        .is_err());
        let trips = write(
            dir.path(),
            "t.tntp",
            "<NUMBER OF ZONES> 3\n<END OF METADATA>\nOrigin 1\n2 : 1;\n",
        );
        let e = import(
            &net,
            &TntpOptions {
                trips: Some(trips),
                ..Default::default()
            },
        )
        .expect_err("3 zones")
        .to_string();
        assert!(
            e.contains("<NUMBER OF ZONES> 3 differs from the network's 2"),
            "{e}"
        );
    }

    #[test]
    fn benchmark_readmes_state_units() {
        let Some(dir) = data_dir() else { return };
        let units = |folder: &str| {
            let text = std::fs::read_to_string(dir.join(folder).join("README.md")).expect("README");
            readme_units(&text).into_iter().collect::<Vec<_>>()
        };
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            units("Anaheim"),
            pairs(&[("distance", "FOT"), ("speed", "FR"), ("time", "MIN")])
        );
        assert_eq!(
            units("Chicago-Sketch"),
            pairs(&[("distance", "SMI"), ("time", "MIN")])
        );
        assert!(units("SiouxFalls").is_empty());
    }

    #[test]
    fn chicago_sketch_nodes_land_in_chicago() {
        let Some(dir) = data_dir() else { return };
        let base = dir.join("Chicago-Sketch");
        let options = TntpOptions {
            nodes: Some(base.join("ChicagoSketch_node.tntp")),
            crs: Some("EPSG:26771".into()),
            ..Default::default()
        };
        let mut points = Vec::new();
        let s = read_tntp(&base.join("ChicagoSketch_net.tntp"), &options, &mut |e| {
            let v = kv(&e);
            if v["type"] == "RoadNode" {
                let c = &v["location"]["coordinates"];
                points.push((c[0].as_f64().unwrap(), c[1].as_f64().unwrap()));
            }
            Ok(())
        })
        .expect("Chicago-Sketch");
        assert_eq!((s.nodes, s.nodes_located, s.links), (933, 933, 2950));
        let n = points.len() as f64;
        let (lon, lat) = points
            .iter()
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
        eprintln!("Chicago-Sketch: centre {lon} {lat}; first {:?}", points[0]);
        // the centre of the nodes lies in the Chicago region, within 30 km of the Loop (41.88 N, 87.63 W)
        let dx = (lon + 87.63) * 111.3 * 41.88f64.to_radians().cos();
        let dy = (lat - 41.88) * 111.2;
        assert!(dx.hypot(dy) < 30.0, "{lon} {lat}");
        assert!(points
            .iter()
            .all(|(x, y)| (-89.2..-87.0).contains(x) && (40.9..43.0).contains(y)));
    }
}
