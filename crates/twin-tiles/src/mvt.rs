//! The Mapbox Vector Tile 2.1 wire format: the protobuf messages of `vector_tile.proto` (declared for `prost`, no
//! code generation step) and the geometry command stream (MoveTo / LineTo / ClosePath with zig-zag deltas).

/// `application/vnd.mapbox-vector-tile`, the media type of an MVT.
pub const MEDIA_TYPE: &str = "application/vnd.mapbox-vector-tile";

/// A vector tile: a list of layers.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Tile {
    #[prost(message, repeated, tag = "3")]
    pub layers: Vec<Layer>,
}

/// A typed property value; exactly one member is set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Value {
    #[prost(string, optional, tag = "1")]
    pub string_value: Option<String>,
    #[prost(float, optional, tag = "2")]
    pub float_value: Option<f32>,
    #[prost(double, optional, tag = "3")]
    pub double_value: Option<f64>,
    #[prost(int64, optional, tag = "4")]
    pub int_value: Option<i64>,
    #[prost(uint64, optional, tag = "5")]
    pub uint_value: Option<u64>,
    #[prost(sint64, optional, tag = "6")]
    pub sint_value: Option<i64>,
    #[prost(bool, optional, tag = "7")]
    pub bool_value: Option<bool>,
}

/// The geometry type of a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum GeomType {
    Unknown = 0,
    Point = 1,
    Linestring = 2,
    Polygon = 3,
}

/// One feature: an id, its properties as pairs of indexes into the layer's keys and values, and its geometry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Feature {
    #[prost(uint64, optional, tag = "1")]
    pub id: Option<u64>,
    #[prost(uint32, repeated, tag = "2")]
    pub tags: Vec<u32>,
    #[prost(enumeration = "GeomType", optional, tag = "3")]
    pub r#type: Option<i32>,
    #[prost(uint32, repeated, tag = "4")]
    pub geometry: Vec<u32>,
}

/// A named layer of features sharing key and value tables.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Layer {
    #[prost(uint32, required, tag = "15")]
    pub version: u32,
    #[prost(string, required, tag = "1")]
    pub name: String,
    #[prost(message, repeated, tag = "2")]
    pub features: Vec<Feature>,
    #[prost(string, repeated, tag = "3")]
    pub keys: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    pub values: Vec<Value>,
    #[prost(uint32, optional, tag = "5")]
    pub extent: Option<u32>,
}

const MOVE_TO: u32 = 1;
const LINE_TO: u32 = 2;
const CLOSE_PATH: u32 = 7;

fn command(id: u32, count: u32) -> u32 {
    (id & 0x7) | (count << 3)
}

fn zigzag(n: i32) -> u32 {
    ((n << 1) ^ (n >> 31)) as u32
}

fn unzigzag(n: u32) -> i32 {
    ((n >> 1) as i32) ^ -((n & 1) as i32)
}

/// Writes geometry commands; the cursor carries over between parts of one feature, as the format requires.
#[derive(Debug, Default)]
pub struct GeometryWriter {
    pub commands: Vec<u32>,
    cursor: (i32, i32),
}

impl GeometryWriter {
    fn delta(&mut self, p: (i32, i32)) {
        self.commands.push(zigzag(p.0.wrapping_sub(self.cursor.0)));
        self.commands.push(zigzag(p.1.wrapping_sub(self.cursor.1)));
        self.cursor = p;
    }

    /// Points (one MoveTo with all of them).
    pub fn points(&mut self, pts: &[(i32, i32)]) {
        if pts.is_empty() {
            return;
        }
        self.commands.push(command(MOVE_TO, pts.len() as u32));
        for &p in pts {
            self.delta(p);
        }
    }

    /// One line string of at least two points.
    pub fn line(&mut self, pts: &[(i32, i32)]) {
        if pts.len() < 2 {
            return;
        }
        self.commands.push(command(MOVE_TO, 1));
        self.delta(pts[0]);
        self.commands.push(command(LINE_TO, pts.len() as u32 - 1));
        for &p in &pts[1..] {
            self.delta(p);
        }
    }

    /// One ring, given without the closing repeat of its first point.
    pub fn ring(&mut self, pts: &[(i32, i32)]) {
        if pts.len() < 3 {
            return;
        }
        self.line(pts);
        self.commands.push(command(CLOSE_PATH, 1));
    }
}

/// Decodes a geometry command stream into parts (points: one part per point; lines: one part per line string;
/// polygons: one part per ring, not closed). Returns `None` on a malformed stream.
pub fn decode_geometry(commands: &[u32]) -> Option<Vec<Vec<(i32, i32)>>> {
    let mut parts: Vec<Vec<(i32, i32)>> = Vec::new();
    let mut cursor = (0i32, 0i32);
    let mut i = 0;
    while i < commands.len() {
        let id = commands[i] & 0x7;
        let count = (commands[i] >> 3) as usize;
        i += 1;
        match id {
            MOVE_TO | LINE_TO => {
                if i + 2 * count > commands.len() {
                    return None;
                }
                for _ in 0..count {
                    cursor.0 = cursor.0.wrapping_add(unzigzag(commands[i]));
                    cursor.1 = cursor.1.wrapping_add(unzigzag(commands[i + 1]));
                    i += 2;
                    if id == MOVE_TO {
                        parts.push(vec![cursor]);
                    } else {
                        parts.last_mut()?.push(cursor);
                    }
                }
            }
            CLOSE_PATH => {
                if count != 1 {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some(parts)
}

/// The signed area of a ring by the surveyor's formula in tile coordinates (y down): positive for exterior rings
/// and negative for holes, as MVT 2.1 § 4.3.4.4 requires.
pub fn ring_area(pts: &[(i32, i32)]) -> f64 {
    let mut s = 0.0;
    for i in 0..pts.len() {
        let (x0, y0) = pts[i];
        let (x1, y1) = pts[(i + 1) % pts.len()];
        s += x0 as f64 * y1 as f64 - x1 as f64 * y0 as f64;
    }
    s / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn zigzag_round_trips() {
        for n in [0, 1, -1, 2, -2, 4095, -4096, i32::MAX, i32::MIN] {
            assert_eq!(unzigzag(zigzag(n)), n);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn geometry_matches_the_specification_examples() {
        // MVT 2.1 § 4.3.5.1: a point at (25, 17) is [9, 50, 34]
        let mut w = GeometryWriter::default();
        w.points(&[(25, 17)]);
        assert_eq!(w.commands, vec![9, 50, 34]);
        // § 4.3.5.3: a line (2,2) (2,10) (10,10) is [9, 4, 4, 18, 0, 16, 16, 0]
        let mut w = GeometryWriter::default();
        w.line(&[(2, 2), (2, 10), (10, 10)]);
        assert_eq!(w.commands, vec![9, 4, 4, 18, 0, 16, 16, 0]);
        // § 4.3.5.5: a polygon (3,6) (8,12) (20,34) is [9, 6, 12, 18, 10, 12, 24, 44, 15]
        let mut w = GeometryWriter::default();
        w.ring(&[(3, 6), (8, 12), (20, 34)]);
        assert_eq!(w.commands, vec![9, 6, 12, 18, 10, 12, 24, 44, 15]);
        assert_eq!(
            decode_geometry(&w.commands).unwrap(),
            vec![vec![(3, 6), (8, 12), (20, 34)]]
        );
        assert!(decode_geometry(&[9, 6]).is_none());
    }

    #[test]
    fn messages_round_trip() {
        let tile = Tile {
            layers: vec![Layer {
                version: 2,
                name: "Building".into(),
                features: vec![Feature {
                    id: Some(7),
                    tags: vec![0, 0],
                    r#type: Some(GeomType::Point as i32),
                    geometry: vec![9, 50, 34],
                }],
                keys: vec!["height".into()],
                values: vec![Value {
                    double_value: Some(12.5),
                    ..Default::default()
                }],
                extent: Some(4096),
            }],
        };
        let bytes = tile.encode_to_vec();
        assert_eq!(Tile::decode(bytes.as_slice()).unwrap(), tile);
    }
}
