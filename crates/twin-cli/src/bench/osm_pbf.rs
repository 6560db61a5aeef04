//! A small OpenStreetMap PBF writer, used only by `urbantwin bench import` to make a larger extract out of a small
//! one: [`read_extract`] loads an extract into memory (with the `osmpbf` crate), [`write_repeated`] writes N copies
//! of it into one PBF file, copy k shifted east by k × (the extract's width + [`MARGIN_DEG`]) and with every id
//! (and every way ref and relation member id) offset by k × the id span, so copies neither overlap nor collide.
//!
//! The encoding follows `fileformat.proto` (BlobHeader, Blob with `zlib_data`) and `osmformat.proto` (HeaderBlock
//! requiring `OsmSchema-V0.6` and `DenseNodes`; PrimitiveBlocks with a string table, granularity 100 — coordinates
//! are the 1e-7° integers of the source —, DenseNodes with delta-coded ids/lat/lon and `keys_vals`, Ways with
//! delta-coded refs, Relations with delta-coded `memids`, `types` and `roles_sid`). The messages are hand-written
//! `prost` structs; each block holds at most [`BLOCK_ENTITIES`] elements of one kind, all nodes first, then ways,
//! then relations, ids ascending when the source's are (copies are written one after the other). No metadata
//! (versions, timestamps, users) is written.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use flate2::write::ZlibEncoder;
use flate2::Compression;
use prost::Message;

/// Elements per PrimitiveBlock (the usual figure in planet files).
pub const BLOCK_ENTITIES: usize = 8000;
/// Gap between two copies, degrees of longitude.
pub const MARGIN_DEG: f64 = 0.01;

// ---------------------------------------------------------------------------------------------------------------
// fileformat.proto

#[derive(Clone, PartialEq, Message)]
struct BlobHeader {
    #[prost(string, required, tag = "1")]
    r#type: String,
    #[prost(bytes = "vec", optional, tag = "2")]
    indexdata: Option<Vec<u8>>,
    #[prost(int32, required, tag = "3")]
    datasize: i32,
}

/// `Blob`, with only the zlib member of its `data` oneof (same wire format).
#[derive(Clone, PartialEq, Message)]
struct Blob {
    #[prost(int32, optional, tag = "2")]
    raw_size: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "3")]
    zlib_data: Option<Vec<u8>>,
}

// ---------------------------------------------------------------------------------------------------------------
// osmformat.proto

#[derive(Clone, PartialEq, Message)]
struct HeaderBlock {
    #[prost(message, optional, tag = "1")]
    bbox: Option<HeaderBBox>,
    #[prost(string, repeated, tag = "4")]
    required_features: Vec<String>,
    #[prost(string, repeated, tag = "5")]
    optional_features: Vec<String>,
    #[prost(string, optional, tag = "16")]
    writingprogram: Option<String>,
    #[prost(string, optional, tag = "17")]
    source: Option<String>,
}

/// Nanodegrees.
#[derive(Clone, PartialEq, Message)]
struct HeaderBBox {
    #[prost(sint64, required, tag = "1")]
    left: i64,
    #[prost(sint64, required, tag = "2")]
    right: i64,
    #[prost(sint64, required, tag = "3")]
    top: i64,
    #[prost(sint64, required, tag = "4")]
    bottom: i64,
}

#[derive(Clone, PartialEq, Message)]
struct PrimitiveBlock {
    #[prost(message, required, tag = "1")]
    stringtable: StringTable,
    #[prost(message, repeated, tag = "2")]
    primitivegroup: Vec<PrimitiveGroup>,
    #[prost(int32, optional, tag = "17")]
    granularity: Option<i32>,
    #[prost(int64, optional, tag = "19")]
    lat_offset: Option<i64>,
    #[prost(int64, optional, tag = "20")]
    lon_offset: Option<i64>,
}

#[derive(Clone, PartialEq, Message)]
struct StringTable {
    #[prost(bytes = "vec", repeated, tag = "1")]
    s: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
struct PrimitiveGroup {
    #[prost(message, optional, tag = "2")]
    dense: Option<DenseNodes>,
    #[prost(message, repeated, tag = "3")]
    ways: Vec<PbfWay>,
    #[prost(message, repeated, tag = "4")]
    relations: Vec<PbfRelation>,
}

#[derive(Clone, PartialEq, Message)]
struct DenseNodes {
    /// Delta coded.
    #[prost(sint64, repeated, tag = "1")]
    id: Vec<i64>,
    /// Delta coded, in granularity units.
    #[prost(sint64, repeated, tag = "8")]
    lat: Vec<i64>,
    /// Delta coded, in granularity units.
    #[prost(sint64, repeated, tag = "9")]
    lon: Vec<i64>,
    /// Per node: key and value string ids, then 0.
    #[prost(int32, repeated, tag = "10")]
    keys_vals: Vec<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct PbfWay {
    #[prost(int64, required, tag = "1")]
    id: i64,
    #[prost(uint32, repeated, tag = "2")]
    keys: Vec<u32>,
    #[prost(uint32, repeated, tag = "3")]
    vals: Vec<u32>,
    /// Delta coded.
    #[prost(sint64, repeated, tag = "8")]
    refs: Vec<i64>,
}

#[derive(Clone, PartialEq, Message)]
struct PbfRelation {
    #[prost(int64, required, tag = "1")]
    id: i64,
    #[prost(uint32, repeated, tag = "2")]
    keys: Vec<u32>,
    #[prost(uint32, repeated, tag = "3")]
    vals: Vec<u32>,
    #[prost(int32, repeated, tag = "8")]
    roles_sid: Vec<i32>,
    /// Delta coded.
    #[prost(sint64, repeated, tag = "9")]
    memids: Vec<i64>,
    /// `MemberType`: 0 node, 1 way, 2 relation.
    #[prost(int32, repeated, tag = "10")]
    types: Vec<i32>,
}

// ---------------------------------------------------------------------------------------------------------------
// the extract in memory

/// Tags in file order.
pub type Tags = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: i64,
    /// 1e-7 degrees.
    pub lon7: i32,
    pub lat7: i32,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Way {
    pub id: i64,
    pub refs: Vec<i64>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberType {
    Node = 0,
    Way = 1,
    Relation = 2,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub kind: MemberType,
    pub id: i64,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    pub id: i64,
    pub members: Vec<Member>,
    pub tags: Tags,
}

/// An OSM extract held in memory (small extracts only: this is for generating benchmark input).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extract {
    pub nodes: Vec<Node>,
    pub ways: Vec<Way>,
    pub relations: Vec<Relation>,
}

impl Extract {
    /// Elements: nodes + ways + relations.
    pub fn elements(&self) -> u64 {
        (self.nodes.len() + self.ways.len() + self.relations.len()) as u64
    }

    /// (min lon7, max lon7, min lat7, max lat7) of the nodes; None without nodes.
    fn bounds7(&self) -> Option<(i32, i32, i32, i32)> {
        let first = self.nodes.first()?;
        let mut b = (first.lon7, first.lon7, first.lat7, first.lat7);
        for n in &self.nodes {
            b.0 = b.0.min(n.lon7);
            b.1 = b.1.max(n.lon7);
            b.2 = b.2.min(n.lat7);
            b.3 = b.3.max(n.lat7);
        }
        Some(b)
    }

    /// The id offset between two copies: the span of all ids (of every kind, refs and members included) + 1, so
    /// that copy k's ids never meet copy j's.
    fn id_step(&self) -> Result<i64> {
        let ids = self
            .nodes
            .iter()
            .map(|n| n.id)
            .chain(
                self.ways
                    .iter()
                    .flat_map(|w| w.refs.iter().copied().chain([w.id])),
            )
            .chain(
                self.relations
                    .iter()
                    .flat_map(|r| r.members.iter().map(|m| m.id).chain([r.id])),
            );
        let (mut lo, mut hi) = (0i64, 0i64);
        for id in ids {
            lo = lo.min(id);
            hi = hi.max(id);
        }
        hi.checked_sub(lo)
            .and_then(|d| d.checked_add(1))
            .context("ids span more than i64")
    }
}

/// Reads an OSM PBF file into memory with the `osmpbf` crate.
pub fn read_extract(path: &Path) -> Result<Extract> {
    let reader = osmpbf::ElementReader::from_path(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let tags = |it: &mut dyn Iterator<Item = (&str, &str)>| -> Tags {
        it.map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let mut ex = Extract::default();
    let mut bad_role = None;
    reader
        .for_each(|el| match el {
            osmpbf::Element::Node(n) => ex.nodes.push(Node {
                id: n.id(),
                lon7: n.decimicro_lon(),
                lat7: n.decimicro_lat(),
                tags: tags(&mut n.tags()),
            }),
            osmpbf::Element::DenseNode(n) => ex.nodes.push(Node {
                id: n.id(),
                lon7: n.decimicro_lon(),
                lat7: n.decimicro_lat(),
                tags: tags(&mut n.tags()),
            }),
            osmpbf::Element::Way(w) => ex.ways.push(Way {
                id: w.id(),
                refs: w.refs().collect(),
                tags: tags(&mut w.tags()),
            }),
            osmpbf::Element::Relation(r) => {
                let members = r
                    .members()
                    .map(|m| Member {
                        kind: match m.member_type {
                            osmpbf::RelMemberType::Node => MemberType::Node,
                            osmpbf::RelMemberType::Way => MemberType::Way,
                            osmpbf::RelMemberType::Relation => MemberType::Relation,
                        },
                        id: m.member_id,
                        role: m.role().map(str::to_string).unwrap_or_else(|e| {
                            bad_role = Some(format!("relation {}: {e}", r.id()));
                            String::new()
                        }),
                    })
                    .collect();
                ex.relations.push(Relation {
                    id: r.id(),
                    members,
                    tags: tags(&mut r.tags()),
                });
            }
        })
        .with_context(|| format!("cannot read {} as OSM PBF", path.display()))?;
    if let Some(e) = bad_role {
        bail!("{}: {e}", path.display());
    }
    Ok(ex)
}

// ---------------------------------------------------------------------------------------------------------------
// writing

/// What [`write_repeated`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub copies: usize,
    pub nodes: u64,
    pub ways: u64,
    pub relations: u64,
    pub blocks: u64,
    pub bytes: u64,
    /// Longitude shift between two copies, degrees.
    pub shift_deg: f64,
    /// Id offset between two copies.
    pub id_step: i64,
}

impl Written {
    pub fn elements(&self) -> u64 {
        self.nodes + self.ways + self.relations
    }
}

/// The string table of one block; entry 0 is the empty string (the `keys_vals` delimiter).
struct Strings {
    ids: HashMap<String, u32>,
    table: Vec<Vec<u8>>,
}

impl Strings {
    fn new() -> Strings {
        Strings {
            ids: HashMap::new(),
            table: vec![Vec::new()],
        }
    }

    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.table.len() as u32;
        self.table.push(s.as_bytes().to_vec());
        self.ids.insert(s.to_string(), i);
        i
    }
}

/// One PrimitiveBlock being filled with elements of one kind.
struct Block {
    strings: Strings,
    dense: DenseNodes,
    ways: Vec<PbfWay>,
    relations: Vec<PbfRelation>,
    len: usize,
    /// Previous node id, lat, lon (delta coding across the dense nodes of the block).
    last: (i64, i64, i64),
}

impl Block {
    fn new() -> Block {
        Block {
            strings: Strings::new(),
            dense: DenseNodes::default(),
            ways: Vec::new(),
            relations: Vec::new(),
            len: 0,
            last: (0, 0, 0),
        }
    }

    fn keys_vals(&mut self, tags: &Tags) -> (Vec<u32>, Vec<u32>) {
        tags.iter()
            .map(|(k, v)| (self.strings.id(k), self.strings.id(v)))
            .unzip()
    }

    fn node(&mut self, id: i64, lon7: i64, lat7: i64, tags: &Tags) {
        let d = &mut self.dense;
        d.id.push(id - self.last.0);
        d.lat.push(lat7 - self.last.1);
        d.lon.push(lon7 - self.last.2);
        self.last = (id, lat7, lon7);
        for (k, v) in tags {
            let (k, v) = (self.strings.id(k), self.strings.id(v));
            self.dense.keys_vals.extend([k as i32, v as i32]);
        }
        self.dense.keys_vals.push(0);
        self.len += 1;
    }

    fn way(&mut self, id: i64, refs: impl Iterator<Item = i64>, tags: &Tags) {
        let (keys, vals) = self.keys_vals(tags);
        let mut prev = 0;
        let refs = refs
            .map(|r| {
                let d = r - prev;
                prev = r;
                d
            })
            .collect();
        self.ways.push(PbfWay {
            id,
            keys,
            vals,
            refs,
        });
        self.len += 1;
    }

    fn relation(&mut self, id: i64, members: &[Member], offset: i64, tags: &Tags) {
        let (keys, vals) = self.keys_vals(tags);
        let mut prev = 0;
        let mut r = PbfRelation {
            id,
            keys,
            vals,
            ..Default::default()
        };
        for m in members {
            let mid = m.id + offset;
            r.memids.push(mid - prev);
            prev = mid;
            r.types.push(m.kind as i32);
            r.roles_sid.push(self.strings.id(&m.role) as i32);
        }
        self.relations.push(r);
        self.len += 1;
    }

    /// The finished block, leaving this one empty.
    fn take(&mut self) -> PrimitiveBlock {
        let b = std::mem::replace(self, Block::new());
        let group = PrimitiveGroup {
            dense: (!b.dense.id.is_empty()).then_some(b.dense),
            ways: b.ways,
            relations: b.relations,
        };
        PrimitiveBlock {
            stringtable: StringTable { s: b.strings.table },
            primitivegroup: vec![group],
            granularity: Some(100),
            lat_offset: None,
            lon_offset: None,
        }
    }
}

/// Writes blobs: a 4-byte big-endian BlobHeader length, the BlobHeader, the Blob.
struct BlobWriter<W: Write> {
    out: W,
    blocks: u64,
    bytes: u64,
}

impl<W: Write> BlobWriter<W> {
    fn blob(&mut self, kind: &str, raw: &[u8]) -> Result<()> {
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(raw)?;
        let blob = Blob {
            raw_size: Some(i32::try_from(raw.len()).context("block too large")?),
            zlib_data: Some(z.finish()?),
        }
        .encode_to_vec();
        let header = BlobHeader {
            r#type: kind.to_string(),
            indexdata: None,
            datasize: i32::try_from(blob.len()).context("blob too large")?,
        }
        .encode_to_vec();
        self.out.write_all(&(header.len() as u32).to_be_bytes())?;
        self.out.write_all(&header)?;
        self.out.write_all(&blob)?;
        self.bytes += 4 + header.len() as u64 + blob.len() as u64;
        Ok(())
    }

    fn block(&mut self, b: &mut Block) -> Result<()> {
        if b.len == 0 {
            return Ok(());
        }
        self.blob("OSMData", &b.take().encode_to_vec())?;
        self.blocks += 1;
        Ok(())
    }
}

/// Writes `copies` shifted copies of `ex` into a new PBF file at `path`, at most `block_entities` elements per block.
pub fn write_repeated(
    ex: &Extract,
    copies: usize,
    block_entities: usize,
    path: &Path,
) -> Result<Written> {
    if copies == 0 {
        bail!("--repeat must be at least 1");
    }
    let block_entities = block_entities.max(1);
    let Some((min_lon, max_lon, min_lat, max_lat)) = ex.bounds7() else {
        bail!("the extract has no nodes");
    };
    let shift7 = i64::from(max_lon - min_lon) + (MARGIN_DEG * 1e7).round() as i64;
    let last_copy = copies as i64 - 1;
    let east7 = i64::from(max_lon) + last_copy * shift7;
    if east7 > 1_800_000_000 {
        bail!(
            "{copies} copies of an extract {:.4}° wide do not fit east of {:.4}°E: use a smaller --repeat",
            f64::from(max_lon - min_lon) / 1e7,
            f64::from(min_lon) / 1e7
        );
    }
    let id_step = ex.id_step()?;
    let max_abs_id = ex
        .nodes
        .iter()
        .map(|n| n.id.unsigned_abs())
        .chain(ex.ways.iter().map(|w| w.id.unsigned_abs()))
        .chain(ex.relations.iter().map(|r| r.id.unsigned_abs()))
        .max()
        .unwrap_or(0);
    if id_step
        .checked_mul(copies as i64)
        .and_then(|s| s.checked_add(max_abs_id as i64))
        .is_none()
    {
        bail!("{copies} copies would overflow 64-bit OSM ids: use a smaller --repeat");
    }

    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = BlobWriter {
        out: BufWriter::with_capacity(1 << 20, file),
        blocks: 0,
        bytes: 0,
    };
    let header = HeaderBlock {
        bbox: Some(HeaderBBox {
            left: i64::from(min_lon) * 100,
            right: east7 * 100,
            top: i64::from(max_lat) * 100,
            bottom: i64::from(min_lat) * 100,
        }),
        required_features: vec!["OsmSchema-V0.6".into(), "DenseNodes".into()],
        optional_features: vec![],
        writingprogram: Some("urbantwin bench import".into()),
        source: Some(format!("{copies} shifted copies of one extract")),
    };
    w.blob("OSMHeader", &header.encode_to_vec())?;

    let mut b = Block::new();
    for k in 0..copies as i64 {
        let (off, dx) = (k * id_step, k * shift7);
        for n in &ex.nodes {
            b.node(
                n.id + off,
                i64::from(n.lon7) + dx,
                i64::from(n.lat7),
                &n.tags,
            );
            if b.len >= block_entities {
                w.block(&mut b)?;
            }
        }
    }
    w.block(&mut b)?;
    for k in 0..copies as i64 {
        let off = k * id_step;
        for way in &ex.ways {
            b.way(way.id + off, way.refs.iter().map(|r| r + off), &way.tags);
            if b.len >= block_entities {
                w.block(&mut b)?;
            }
        }
    }
    w.block(&mut b)?;
    for k in 0..copies as i64 {
        let off = k * id_step;
        for r in &ex.relations {
            b.relation(r.id + off, &r.members, off, &r.tags);
            if b.len >= block_entities {
                w.block(&mut b)?;
            }
        }
    }
    w.block(&mut b)?;
    w.out
        .flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    let n = copies as u64;
    Ok(Written {
        copies,
        nodes: n * ex.nodes.len() as u64,
        ways: n * ex.ways.len() as u64,
        relations: n * ex.relations.len() as u64,
        blocks: w.blocks,
        bytes: w.bytes,
        shift_deg: shift7 as f64 / 1e7,
        id_step,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use twin_import::osm::{read_osm, OsmItem, OsmSummary};

    fn tags(kv: &[(&str, &str)]) -> Tags {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn node(id: i64, lon: f64, lat: f64, kv: &[(&str, &str)]) -> Node {
        Node {
            id,
            lon7: (lon * 1e7).round() as i32,
            lat7: (lat * 1e7).round() as i32,
            tags: tags(kv),
        }
    }

    /// A road of three nodes, a café, and a building as a multipolygon of one closed way.
    fn small() -> Extract {
        Extract {
            nodes: vec![
                node(1, 24.9400, 60.1700, &[]),
                node(2, 24.9410, 60.1700, &[]),
                node(3, 24.9420, 60.1710, &[("highway", "crossing")]),
                node(
                    10,
                    24.9405,
                    60.1702,
                    &[("amenity", "cafe"), ("name", "Kahvila")],
                ),
                node(20, 24.9430, 60.1720, &[]),
                node(21, 24.9440, 60.1720, &[]),
                node(22, 24.9440, 60.1730, &[]),
                node(23, 24.9430, 60.1730, &[]),
            ],
            ways: vec![
                Way {
                    id: 100,
                    refs: vec![1, 2, 3],
                    tags: tags(&[("highway", "residential"), ("name", "Katu")]),
                },
                Way {
                    id: 101,
                    refs: vec![20, 21, 22, 23, 20],
                    tags: vec![],
                },
            ],
            relations: vec![Relation {
                id: 300,
                members: vec![Member {
                    kind: MemberType::Way,
                    id: 101,
                    role: "outer".into(),
                }],
                tags: tags(&[("type", "multipolygon"), ("building", "yes")]),
            }],
        }
    }

    fn read_back(path: &Path) -> (OsmSummary, Vec<(i64, f64, f64)>) {
        let mut nodes = Vec::new();
        let s = read_osm(path, &mut |item| {
            if let OsmItem::Node(id, lon, lat) = item {
                nodes.push((id, lon, lat));
            }
            Ok(())
        })
        .unwrap();
        (s, nodes)
    }

    #[test]
    fn repeated_copies_read_back_with_shifted_coordinates_and_ids() {
        let ex = small();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("three.osm.pbf");
        // two elements per block: delta coding and string tables restart in every block
        let w = write_repeated(&ex, 3, 2, &path).unwrap();
        assert_eq!((w.nodes, w.ways, w.relations), (24, 6, 3));
        assert_eq!(w.id_step, 301);
        let width = 24.9440 - 24.9400;
        assert!((w.shift_deg - (width + MARGIN_DEG)).abs() < 1e-9, "{w:?}");
        assert_eq!(w.bytes, std::fs::metadata(&path).unwrap().len());

        // osmpbf reads back exactly what was written
        let back = read_extract(&path).unwrap();
        assert_eq!(back.elements(), 3 * ex.elements());
        let shift7 = (w.shift_deg * 1e7).round() as i32;
        for k in 0..3 {
            let off = k * w.id_step;
            for (i, n) in ex.nodes.iter().enumerate() {
                let m = &back.nodes[k as usize * ex.nodes.len() + i];
                assert_eq!(m.id, n.id + off);
                assert_eq!(m.lon7, n.lon7 + k as i32 * shift7);
                assert_eq!((m.lat7, &m.tags), (n.lat7, &n.tags));
            }
            let way = &back.ways[k as usize * 2];
            assert_eq!(way.id, 100 + off);
            assert_eq!(way.refs, vec![1 + off, 2 + off, 3 + off]);
            assert_eq!(way.tags, ex.ways[0].tags);
            let r = &back.relations[k as usize];
            assert_eq!(r.id, 300 + off);
            assert_eq!(r.members[0].id, 101 + off);
            assert_eq!(r.members[0].kind, MemberType::Way);
            assert_eq!(r.members[0].role, "outer");
        }

        // and urbantwin's own reader finds every copy's features
        let (s, nodes) = read_back(&path);
        assert_eq!((s.nodes_read, s.ways_read, s.relations_read), (24, 6, 3));
        assert_eq!((s.pois, s.buildings, s.road_segments), (3, 3, 3));
        assert_eq!(s.incomplete, 0);
        for k in 0..3 {
            let id = 1 + k * w.id_step;
            let &(_, lon, lat) = nodes
                .iter()
                .find(|n| n.0 == id)
                .unwrap_or_else(|| panic!("network node {id} missing: {nodes:?}"));
            assert!(
                (lon - (24.94 + k as f64 * w.shift_deg)).abs() < 1e-7,
                "{lon}"
            );
            assert!((lat - 60.17).abs() < 1e-7);
        }
    }

    #[test]
    fn refuses_what_cannot_be_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.osm.pbf");
        assert!(write_repeated(&small(), 0, 8000, &path).is_err());
        assert!(write_repeated(&Extract::default(), 1, 8000, &path).is_err());
        // 0.014° per copy: about 11,000 copies fit between 24.94°E and 180°E
        let err = write_repeated(&small(), 20_000, 8000, &path).unwrap_err();
        assert!(err.to_string().contains("smaller --repeat"), "{err}");
    }

    #[test]
    fn helsinki_repeated_twice_doubles_everything() {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/osm/helsinki.osm.pbf");
        if !p.is_file() {
            eprintln!("skipping: {} not found", p.display());
            return;
        }
        let ex = read_extract(&p).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("helsinki-x2.osm.pbf");
        let w = write_repeated(&ex, 2, BLOCK_ENTITIES, &path).unwrap();
        assert_eq!(w.elements(), 2 * ex.elements());
        let (one, _) = read_back(&p);
        let (two, nodes) = read_back(&path);
        assert_eq!(two.nodes_read, 2 * one.nodes_read);
        assert_eq!(two.ways_read, 2 * one.ways_read);
        assert_eq!(two.relations_read, 2 * one.relations_read);
        assert_eq!(one.nodes_read, ex.nodes.len() as u64);
        for (a, b) in [
            (one.road_segments, two.road_segments),
            (one.road_links, two.road_links),
            (one.network_nodes, two.network_nodes),
            (one.buildings, two.buildings),
            (one.pois, two.pois),
            (one.land_uses, two.land_uses),
            (one.incomplete, two.incomplete),
        ] {
            assert_eq!(b, 2 * a, "{one:?}\n{two:?}");
        }
        // the second copy lies east of the first, without overlap
        let east_of_first = ex.nodes.iter().map(|n| n.lon7).max().unwrap() as f64 / 1e7;
        assert!(nodes
            .iter()
            .filter(|n| n.0 >= w.id_step)
            .all(|n| n.1 > east_of_first + MARGIN_DEG * 0.99));
        assert!(nodes.iter().any(|n| n.0 >= w.id_step));
    }
}
