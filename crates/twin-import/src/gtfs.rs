//! Reads a GTFS feed (a `.zip` file or a directory) into one Smart Data Models `GtfsStop` entity
//! (dataModel.UrbanMobility) per row of `stops.txt`, with the kinds of transit that serve it.
//!
//! | stops.txt | attribute |
//! | --- | --- |
//! | `stop_id` | id `urn:ngsi-ld:GtfsStop:<stop_id>` (characters not allowed in a URN percent-encoded) |
//! | `stop_name`, `stop_code`, `stop_desc` | `name`, `code`, `description` |
//! | `stop_lat`, `stop_lon` | `location`, a GeoJSON Point (required for location types 0–2, optional for 3 and 4) |
//! | `location_type` | `locationType`: 0 stop or platform (also when empty), 1 station, 2 entrance/exit, 3 generic node, 4 boarding area |
//! | `parent_station` | `hasParentStation`, a Relationship to the parent's `GtfsStop` |
//! | `wheelchair_boarding` | `wheelChairAccessible` (`"0"`, `"1"`, `"2"`, the Smart Data Models name and form) |
//! | `platform_code`, `zone_id`, `stop_url` | `platformCode`, `zoneCode`, `page` |
//!
//! Derived attributes:
//! - `routeType`: the GTFS `route_type` codes of the routes whose trips call at the stop, found by streaming
//!   `stop_times.txt` (trip → stop) against `trips.txt` (trip → route) and `routes.txt` (route → type). Only a
//!   stop → set-of-types map is kept, never `stop_times.txt` itself. A station (type 1) gets the union of its own and
//!   its child stops' types; an entrance (2) its station's; a boarding area (4) its platform's.
//! - `transportMode`: the same as readable modes — `tram`, `subway`, `rail`, `bus`, `ferry`, `cable_tram`,
//!   `aerial_lift`, `funicular`, `trolleybus`, `monorail` — with Google's extended route types (100–1799) mapped to
//!   their basic mode ([`transport_mode`]); air services are `air`, taxis `taxi`, anything else `other`.
//! - `category`: `["public_transport_stop"]` for stops, stations and entrances (types 0–2), the 15-minute-city
//!   category the OpenStreetMap reader gives bus stops and stations, so both sources count as transit stops. It is
//!   set whether or not a route serves the stop; [`GtfsSummary::without_service`] counts those served by none.
//!
//! When `routes.txt`, `trips.txt` or `stop_times.txt` is missing, stops are still read, without `routeType` and
//! `transportMode`. References to unknown routes, trips, stops or parent stations are counted in the summary rather
//! than failing the import; everything else that is malformed (a missing `stops.txt`, a missing required column, a
//! coordinate that is not a number or out of range, a bad enumeration value, a duplicate `stop_id`) is an
//! [`ImportError`] naming the table (`feed.zip:stops.txt`), the line and the reason.
//!
//! Tables are read with the `csv` crate: a UTF-8 byte-order mark, quoted fields, CRLF line ends and optional columns
//! in any order are fine; rows shorter than the header are read as if the missing cells were empty.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::Utc;
use serde_json::{json, Map, Value};
use twin_model::{Context, Entity, Provenance};

use crate::cityjson::urn;
use crate::ImportError;

/// The NGSI-LD type of every entity this reader makes.
pub const STOP_TYPE: &str = "GtfsStop";

/// The 15-minute-city category of transit stops (as in [`crate::osm`]).
pub const TRANSIT_CATEGORY: &str = "public_transport_stop";

/// How to read a feed.
#[derive(Default)]
pub struct GtfsOptions<'a> {
    /// The urbantwin dataset the entities belong to.
    pub dataset: Option<String>,
    /// Called with the number of `stop_times.txt` rows read so far, every 100,000 rows.
    pub progress: Option<&'a dyn Fn(u64)>,
}

/// What a read found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GtfsSummary {
    /// Stops and platforms (location type 0).
    pub stops: usize,
    /// Stations (location type 1).
    pub stations: usize,
    /// Entrances and exits (location type 2).
    pub entrances: usize,
    /// Generic nodes and boarding areas (location types 3 and 4).
    pub other_locations: usize,
    /// Rows of `routes.txt`, `trips.txt` and `stop_times.txt` read.
    pub routes: usize,
    pub trips: usize,
    pub stop_times: u64,
    /// False when one of `routes.txt`, `trips.txt`, `stop_times.txt` is missing (named in `missing_tables`).
    pub route_types_computed: bool,
    pub missing_tables: Vec<String>,
    /// Stops, stations and entrances that no trip serves (only counted when route types were computed).
    pub without_service: usize,
    /// Stops, stations and entrances per transport mode (one location may count under several modes).
    pub by_mode: BTreeMap<String, usize>,
    /// Dangling references, counted and otherwise ignored.
    pub trips_with_unknown_route: u64,
    pub stop_times_with_unknown_trip: u64,
    pub stop_times_with_unknown_stop: u64,
    pub unknown_parent_stations: usize,
}

/// The readable mode of a GTFS `route_type`: the ten basic types, and Google's extended route types mapped to the
/// basic type of their block (100 railway → rail, 200 coach → bus, 400 urban railway → subway except 405 monorail,
/// 700 bus, 800 trolleybus, 900 tram, 1000 water transport and 1200 ferry → ferry, 1300 aerial lift, 1400
/// funicular); 1100 air services are `air`, 1500 taxis `taxi`, the rest `other`. The blocks 300, 500 and 600 of the
/// underlying TPEG HVT list (suburban railway, metro, underground) map to rail and subway.
pub fn transport_mode(route_type: u16) -> &'static str {
    match route_type {
        0 => "tram",
        1 => "subway",
        2 => "rail",
        3 => "bus",
        4 => "ferry",
        5 => "cable_tram",
        6 => "aerial_lift",
        7 => "funicular",
        11 => "trolleybus",
        12 => "monorail",
        405 => "monorail",
        100..=199 | 300..=399 => "rail",
        200..=299 | 700..=799 => "bus",
        400..=699 => "subway",
        800..=899 => "trolleybus",
        900..=999 => "tram",
        1000..=1099 | 1200..=1299 => "ferry",
        1100..=1199 => "air",
        1300..=1399 => "aerial_lift",
        1400..=1499 => "funicular",
        1500..=1599 => "taxi",
        _ => "other",
    }
}

/// Reads the feed at `path` (a `.zip` file or a directory holding the `.txt` tables) and hands one `GtfsStop`
/// entity per `stops.txt` row to `sink`, in file order.
pub fn read_gtfs(
    path: &Path,
    options: &GtfsOptions,
    sink: &mut dyn FnMut(Entity) -> Result<(), ImportError>,
) -> Result<GtfsSummary, ImportError> {
    let mut feed = Feed::open(path)?;
    let mut summary = GtfsSummary::default();

    let missing = ImportError::file(
        feed.table_name("stops.txt"),
        "missing: a GTFS feed needs stops.txt",
    );
    let (stops_name, reader) = feed.table("stops.txt")?.ok_or(missing)?;
    let stops = read_stops(Table::new(reader, stops_name.clone())?)?;
    let index: HashMap<Box<[u8]>, u32> = stops
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_bytes().into(), i as u32))
        .collect();

    let mut served: Vec<Vec<u16>> = vec![Vec::new(); stops.len()];
    summary.route_types_computed = true;
    for t in ["routes.txt", "trips.txt", "stop_times.txt"] {
        if !feed.has(t) {
            summary.missing_tables.push(t.to_string());
            summary.route_types_computed = false;
        }
    }
    if summary.route_types_computed {
        let routes = read_routes(&mut feed, &mut summary)?;
        let trips = read_trips(&mut feed, &routes, &mut summary)?;
        drop(routes);
        read_stop_times(
            &mut feed,
            &trips,
            &index,
            &mut served,
            options,
            &mut summary,
        )?;
    }

    // Stations take the union of their children's types; entrances their station's, boarding areas their
    // platform's.
    let parent_of = |s: &Stop| {
        s.parent
            .as_deref()
            .and_then(|p| index.get(p.as_bytes()).map(|&i| i as usize))
    };
    for (i, s) in stops.iter().enumerate() {
        if s.location_type == 0 {
            if let Some(p) = parent_of(s).filter(|&p| stops[p].location_type == 1) {
                let child = served[i].clone();
                union(&mut served[p], &child);
            }
        }
    }
    for (i, s) in stops.iter().enumerate() {
        let wanted = match s.location_type {
            2 => 1,
            4 => 0,
            _ => continue,
        };
        if let Some(p) = parent_of(s).filter(|&p| stops[p].location_type == wanted) {
            let from_parent = served[p].clone();
            union(&mut served[i], &from_parent);
        }
    }

    let prov = Provenance {
        dataset: options.dataset.clone(),
        source: Some(feed.name.clone()),
        channel: Some("import:gtfs".into()),
    };
    let now = Utc::now();
    let ctx = Context::core();
    for (s, types) in stops.iter().zip(&mut served) {
        types.sort_unstable();
        match s.location_type {
            0 => summary.stops += 1,
            1 => summary.stations += 1,
            2 => summary.entrances += 1,
            _ => summary.other_locations += 1,
        }
        if s.parent.is_some() && parent_of(s).is_none() {
            summary.unknown_parent_stations += 1;
        }
        let modes: BTreeSet<&str> = types.iter().map(|&t| transport_mode(t)).collect();
        if s.location_type <= 2 {
            if types.is_empty() && summary.route_types_computed {
                summary.without_service += 1;
            }
            for m in &modes {
                *summary.by_mode.entry(m.to_string()).or_insert(0) += 1;
            }
        }
        let doc = stop_json(s, types, &modes);
        let e = twin_model::ngsi::parse_entity(&doc, &ctx, now, &prov).map_err(|e| {
            ImportError::new(
                stops_name.as_str(),
                format!("line {}", s.line),
                format!("not a valid entity: {}", e.detail),
            )
        })?;
        sink(e)?;
    }
    Ok(summary)
}

/// One row of `stops.txt`, checked.
struct Stop {
    line: u64,
    id: String,
    name: Option<String>,
    code: Option<String>,
    description: Option<String>,
    zone: Option<String>,
    url: Option<String>,
    platform: Option<String>,
    /// (lon, lat)
    point: Option<(f64, f64)>,
    location_type: u8,
    parent: Option<String>,
    wheelchair: Option<u8>,
}

fn stop_json(s: &Stop, types: &[u16], modes: &BTreeSet<&str>) -> Value {
    let prop = |v: Value| json!({"type": "Property", "value": v});
    let mut m = Map::new();
    m.insert("id".into(), json!(urn(STOP_TYPE, &s.id)));
    m.insert("type".into(), json!(STOP_TYPE));
    for (attr, value) in [
        ("name", &s.name),
        ("code", &s.code),
        ("description", &s.description),
        ("zoneCode", &s.zone),
        ("page", &s.url),
        ("platformCode", &s.platform),
    ] {
        if let Some(v) = value {
            m.insert(attr.into(), prop(json!(v)));
        }
    }
    m.insert("locationType".into(), prop(json!(s.location_type)));
    if let Some((lon, lat)) = s.point {
        m.insert(
            "location".into(),
            json!({"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}),
        );
    }
    if let Some(p) = &s.parent {
        m.insert(
            "hasParentStation".into(),
            json!({"type": "Relationship", "object": urn(STOP_TYPE, p)}),
        );
    }
    if let Some(w) = s.wheelchair {
        m.insert("wheelChairAccessible".into(), prop(json!(w.to_string())));
    }
    if !types.is_empty() {
        m.insert("routeType".into(), prop(json!(types)));
        m.insert("transportMode".into(), prop(json!(modes)));
    }
    if s.location_type <= 2 {
        m.insert("category".into(), prop(json!([TRANSIT_CATEGORY])));
    }
    Value::Object(m)
}

fn union(into: &mut Vec<u16>, from: &[u16]) {
    for t in from {
        if !into.contains(t) {
            into.push(*t);
        }
    }
}

fn read_stops<R: Read>(mut t: Table<R>) -> Result<Vec<Stop>, ImportError> {
    let c_id = t.required("stop_id")?;
    let c_lat = t.required("stop_lat")?;
    let c_lon = t.required("stop_lon")?;
    let c_name = t.col("stop_name");
    let c_code = t.col("stop_code");
    let c_desc = t.col("stop_desc");
    let c_zone = t.col("zone_id");
    let c_url = t.col("stop_url");
    let c_platform = t.col("platform_code");
    let c_type = t.col("location_type");
    let c_parent = t.col("parent_station");
    let c_wheelchair = t.col("wheelchair_boarding");
    let mut stops = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    while t.next()? {
        if t.is_blank() {
            continue;
        }
        let id = t
            .text(Some(c_id))?
            .ok_or_else(|| t.error("empty stop_id"))?
            .to_string();
        if let Some(first) = seen.get(&id) {
            return Err(t.error(format!(
                "stop_id {id:?} appears twice (first on line {first})"
            )));
        }
        let location_type = match t.text(c_type)? {
            None => 0,
            Some(v) => v.parse::<u8>().ok().filter(|v| *v <= 4).ok_or_else(|| {
                t.error(format!("location_type {v:?} is not one of 0, 1, 2, 3, 4"))
            })?,
        };
        let wheelchair = match t.text(c_wheelchair)? {
            None => None,
            Some(v) => Some(v.parse::<u8>().ok().filter(|v| *v <= 2).ok_or_else(|| {
                t.error(format!("wheelchair_boarding {v:?} is not one of 0, 1, 2"))
            })?),
        };
        let coordinate = |col: usize, what: &str, limit: f64| -> Result<Option<f64>, ImportError> {
            let Some(v) = t.text(Some(col))? else {
                return Ok(None);
            };
            let x = v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| t.error(format!("{what} {v:?} is not a number")))?;
            if x.abs() > limit {
                return Err(t.error(format!("{what} {x} is out of range (−{limit}..{limit})")));
            }
            Ok(Some(x))
        };
        let lat = coordinate(c_lat, "stop_lat", 90.0)?;
        let lon = coordinate(c_lon, "stop_lon", 180.0)?;
        let point = match (lon, lat) {
            (Some(lon), Some(lat)) => Some((lon, lat)),
            (None, None) if location_type >= 3 => None,
            (None, None) => {
                return Err(t.error(format!(
                    "stop_lat and stop_lon are required for location_type {location_type}"
                )))
            }
            (Some(_), None) => return Err(t.error("stop_lon without stop_lat")),
            (None, Some(_)) => return Err(t.error("stop_lat without stop_lon")),
        };
        let text = |c: Option<usize>| -> Result<Option<String>, ImportError> {
            Ok(t.text(c)?.map(str::to_string))
        };
        let stop = Stop {
            line: t.line,
            name: text(c_name)?,
            code: text(c_code)?,
            description: text(c_desc)?,
            zone: text(c_zone)?,
            url: text(c_url)?,
            platform: text(c_platform)?,
            point,
            location_type,
            parent: text(c_parent)?,
            wheelchair,
            id,
        };
        seen.insert(stop.id.clone(), t.line);
        stops.push(stop);
    }
    Ok(stops)
}

fn read_routes(
    feed: &mut Feed,
    summary: &mut GtfsSummary,
) -> Result<HashMap<Box<[u8]>, u16>, ImportError> {
    let mut routes = HashMap::new();
    let Some((name, reader)) = feed.table("routes.txt")? else {
        return Ok(routes);
    };
    let mut t = Table::new(reader, name)?;
    let c_id = t.required("route_id")?;
    let c_type = t.required("route_type")?;
    while t.next()? {
        if t.is_blank() {
            continue;
        }
        let v = t.text(Some(c_type))?.unwrap_or("");
        let route_type = v.parse::<u16>().map_err(|_| {
            t.error(format!(
                "route_type {v:?} is not a route type code (a whole number such as 3 or 700)"
            ))
        })?;
        routes.insert(t.bytes(Some(c_id)).into(), route_type);
        summary.routes += 1;
    }
    Ok(routes)
}

fn read_trips(
    feed: &mut Feed,
    routes: &HashMap<Box<[u8]>, u16>,
    summary: &mut GtfsSummary,
) -> Result<HashMap<Box<[u8]>, u16>, ImportError> {
    let mut trips = HashMap::new();
    let Some((name, reader)) = feed.table("trips.txt")? else {
        return Ok(trips);
    };
    let mut t = Table::new(reader, name)?;
    let c_route = t.required("route_id")?;
    let c_trip = t.required("trip_id")?;
    while t.next()? {
        if t.is_blank() {
            continue;
        }
        summary.trips += 1;
        match routes.get(t.bytes(Some(c_route))) {
            Some(&route_type) => {
                trips.insert(t.bytes(Some(c_trip)).into(), route_type);
            }
            None => summary.trips_with_unknown_route += 1,
        }
    }
    Ok(trips)
}

fn read_stop_times(
    feed: &mut Feed,
    trips: &HashMap<Box<[u8]>, u16>,
    stops: &HashMap<Box<[u8]>, u32>,
    served: &mut [Vec<u16>],
    options: &GtfsOptions,
    summary: &mut GtfsSummary,
) -> Result<(), ImportError> {
    let Some((name, reader)) = feed.table("stop_times.txt")? else {
        return Ok(());
    };
    let mut t = Table::new(reader, name)?;
    let c_trip = t.required("trip_id")?;
    let c_stop = t.required("stop_id")?;
    while t.next()? {
        if t.is_blank() {
            continue;
        }
        summary.stop_times += 1;
        if let Some(progress) = options.progress {
            if summary.stop_times.is_multiple_of(100_000) {
                progress(summary.stop_times);
            }
        }
        let Some(&route_type) = trips.get(t.bytes(Some(c_trip))) else {
            summary.stop_times_with_unknown_trip += 1;
            continue;
        };
        let Some(&stop) = stops.get(t.bytes(Some(c_stop))) else {
            summary.stop_times_with_unknown_stop += 1;
            continue;
        };
        let set = &mut served[stop as usize];
        if !set.contains(&route_type) {
            set.push(route_type);
        }
    }
    Ok(())
}

/// A table's name for errors and a reader of its bytes.
type NamedReader<'a> = (String, Box<dyn Read + 'a>);

/// A feed: a directory of tables or a zip archive of them.
struct Feed {
    /// The feed as the user named it.
    name: String,
    source: Source,
}

enum Source {
    Dir(PathBuf),
    Zip(zip::ZipArchive<BufReader<File>>),
}

impl Feed {
    fn open(path: &Path) -> Result<Feed, ImportError> {
        if path.is_dir() {
            return Ok(Feed {
                name: path.display().to_string(),
                source: Source::Dir(path.to_path_buf()),
            });
        }
        let (name, reader) = crate::error::open(path)?;
        let archive = zip::ZipArchive::new(reader).map_err(|e| {
            ImportError::file(
                name.as_str(),
                format!("not a GTFS feed: neither a directory nor a readable zip archive ({e})"),
            )
        })?;
        Ok(Feed {
            name,
            source: Source::Zip(archive),
        })
    }

    /// The entry holding `table` in a zip: at the top, else in one folder (feeds zipped with their folder).
    fn zip_entry(archive: &zip::ZipArchive<BufReader<File>>, table: &str) -> Option<String> {
        let suffix = format!("/{table}");
        archive
            .file_names()
            .filter(|n| *n == table || (n.ends_with(&suffix) && !n.starts_with("__MACOSX/")))
            .min_by_key(|n| (n.len(), n.to_string()))
            .map(str::to_string)
    }

    /// How errors name a table: `feed.zip:stops.txt`, `feed/stops.txt`.
    fn table_name(&self, table: &str) -> String {
        match &self.source {
            Source::Dir(dir) => dir.join(table).display().to_string(),
            Source::Zip(archive) => {
                let entry = Feed::zip_entry(archive, table).unwrap_or_else(|| table.to_string());
                format!("{}:{entry}", self.name)
            }
        }
    }

    fn has(&self, table: &str) -> bool {
        match &self.source {
            Source::Dir(dir) => dir.join(table).is_file(),
            Source::Zip(archive) => Feed::zip_entry(archive, table).is_some(),
        }
    }

    /// A table's name (for errors) and a reader of it, or `None` when the feed lacks it.
    fn table(&mut self, table: &str) -> Result<Option<NamedReader<'_>>, ImportError> {
        let name = self.table_name(table);
        match &mut self.source {
            Source::Dir(dir) => {
                let path = dir.join(table);
                if !path.is_file() {
                    return Ok(None);
                }
                let file = File::open(&path)
                    .map_err(|e| ImportError::file(name.as_str(), format!("cannot open: {e}")))?;
                Ok(Some((
                    name,
                    Box::new(BufReader::with_capacity(1 << 16, file)),
                )))
            }
            Source::Zip(archive) => {
                let Some(entry) = Feed::zip_entry(archive, table) else {
                    return Ok(None);
                };
                let file = archive
                    .by_name(&entry)
                    .map_err(|e| ImportError::file(name.as_str(), format!("cannot read: {e}")))?;
                Ok(Some((name, Box::new(file))))
            }
        }
    }
}

/// A GTFS table read one record at a time, its columns found by name.
struct Table<R: Read> {
    reader: csv::Reader<R>,
    file: String,
    header: Vec<String>,
    record: csv::ByteRecord,
    /// The line the current record starts on.
    line: u64,
}

impl<R: Read> Table<R> {
    fn new(reader: R, file: String) -> Result<Table<R>, ImportError> {
        // Records end at `\n` only: with the default CRLF handling the csv crate reports a record after a `\r\n`
        // one line too early. The `\r` of a CRLF stays at the end of the last cell, which is trimmed anyway.
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(1 << 16)
            .from_reader(reader);
        let header: Vec<String> = reader
            .byte_headers()
            .map_err(|e| csv_error(&file, 1, e))?
            .iter()
            .map(|h| {
                String::from_utf8_lossy(h)
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_string()
            })
            .collect();
        if header.iter().all(String::is_empty) {
            return Err(ImportError::file(file, "empty: no header row"));
        }
        Ok(Table {
            reader,
            file,
            header,
            record: csv::ByteRecord::new(),
            line: 1,
        })
    }

    fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    fn required(&self, name: &str) -> Result<usize, ImportError> {
        self.col(name).ok_or_else(|| {
            ImportError::new(
                self.file.as_str(),
                "line 1",
                format!(
                    "missing required column {name} (columns: {})",
                    self.header.join(", ")
                ),
            )
        })
    }

    /// Moves to the next record; `false` at the end.
    fn next(&mut self) -> Result<bool, ImportError> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(more) => {
                if let Some(p) = self.record.position() {
                    self.line = p.line();
                }
                Ok(more)
            }
            Err(e) => {
                let line = self.reader.position().line();
                Err(csv_error(&self.file, line, e))
            }
        }
    }

    /// A record with nothing in it (a line of only commas or spaces).
    fn is_blank(&self) -> bool {
        self.record.iter().all(|f| f.trim_ascii().is_empty())
    }

    /// A cell's bytes without surrounding spaces; empty when the column is absent or the row short.
    fn bytes(&self, col: Option<usize>) -> &[u8] {
        col.and_then(|c| self.record.get(c))
            .unwrap_or_default()
            .trim_ascii()
    }

    /// A cell as text, `None` when empty.
    fn text(&self, col: Option<usize>) -> Result<Option<&str>, ImportError> {
        let b = self.bytes(col);
        if b.is_empty() {
            return Ok(None);
        }
        std::str::from_utf8(b).map(Some).map_err(|_| {
            let column = col.map(|c| self.header[c].as_str()).unwrap_or("");
            self.error(format!("column {column} is not valid UTF-8 text"))
        })
    }

    fn error(&self, reason: impl Into<String>) -> ImportError {
        ImportError::new(self.file.as_str(), format!("line {}", self.line), reason)
    }
}

fn csv_error(file: &str, line: u64, e: csv::Error) -> ImportError {
    let line = e.position().map(|p| p.line()).unwrap_or(line);
    let reason = match e.kind() {
        csv::ErrorKind::Io(io) => format!("cannot read: {io}"),
        _ => e.to_string(),
    };
    ImportError::new(file, format!("line {line}"), reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A small feed: a station with two platforms (tram and bus; the bus platform also served by an extended-type
    /// coach route), an entrance, a lone bus stop, an unserved stop, and a boarding area.
    const STOPS: &str = "\u{feff}stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station,\
                         wheelchair_boarding,platform_code,stop_code\r\n\
        central,\"Central Station, Main Hall\",60.1710,24.9410,1,,1,,\r\n\
        central-a,Central A,60.1711,24.9411,0,central,,A,CA\r\n\
        central-b,Central B,60.1712,24.9412,,central,2,B,\r\n\
        central-e1,Central entrance,60.1709,24.9409,2,central,,,\r\n\
        market,\"Market \"\"Square\"\"\",60.1675,24.9525,0,,,,\r\n\
        ghost,Unserved,60.2,24.9,0,,,,\r\n\
        central-a-ba,,,,4,central-a,,,\r\n";
    const ROUTES: &str = "route_type,route_id,route_short_name\n0,T1,1\n3,B2,2\n202,C3,X\n";
    const TRIPS: &str = "route_id,service_id,trip_id\nT1,wk,t1\nB2,wk,b1\nC3,wk,c1\nNOPE,wk,x1\n";
    const STOP_TIMES: &str = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n\
        t1,08:00:00,08:00:00,central-a,1\n\
        t1,08:05:00,08:05:00,market,2\n\
        b1,09:00:00,09:00:00,central-b,1\n\
        b1,09:04:00,09:04:00,market,2\n\
        c1,10:00:00,10:00:00,central-b,1\n\
        x1,10:00:00,10:00:00,market,1\n\
        b1,09:09:00,09:09:00,nowhere,3\n";

    fn write_dir(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    fn write_zip(path: &Path, prefix: &str, files: &[(&str, &str)]) {
        let mut z = zip::ZipWriter::new(File::create(path).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in files {
            z.start_file(format!("{prefix}{name}"), opts).unwrap();
            z.write_all(text.as_bytes()).unwrap();
        }
        z.finish().unwrap();
    }

    fn feed_files() -> Vec<(&'static str, &'static str)> {
        vec![
            ("stops.txt", STOPS),
            ("routes.txt", ROUTES),
            ("trips.txt", TRIPS),
            ("stop_times.txt", STOP_TIMES),
        ]
    }

    fn read(path: &Path) -> Result<(GtfsSummary, Vec<Value>), ImportError> {
        let mut out = Vec::new();
        let s = read_gtfs(path, &GtfsOptions::default(), &mut |e| {
            out.push(key_values(&e));
            Ok(())
        })?;
        Ok((s, out))
    }

    /// The entity as keyValues, with short attribute names.
    pub(crate) fn key_values(e: &Entity) -> Value {
        let o = twin_model::ngsi::RenderOptions {
            format: twin_model::ngsi::Format::KeyValues,
            ..Default::default()
        };
        twin_model::ngsi::render_entity(e, &Context::core(), &o)
    }

    fn by_id<'a>(entities: &'a [Value], id: &str) -> &'a Value {
        let urn = format!("urn:ngsi-ld:GtfsStop:{id}");
        entities
            .iter()
            .find(|e| e["id"] == urn.as_str())
            .unwrap_or_else(|| panic!("no {urn}"))
    }

    fn err_text(path: &Path) -> String {
        read(path).expect_err("should fail").to_string()
    }

    #[test]
    fn mode_table() {
        let modes: Vec<_> = [0, 1, 2, 3, 4, 5, 6, 7, 11, 12]
            .into_iter()
            .map(transport_mode)
            .collect();
        assert_eq!(
            modes,
            [
                "tram",
                "subway",
                "rail",
                "bus",
                "ferry",
                "cable_tram",
                "aerial_lift",
                "funicular",
                "trolleybus",
                "monorail"
            ]
        );
        for (t, m) in [
            (109, "rail"),
            (202, "bus"),
            (401, "subway"),
            (405, "monorail"),
            (704, "bus"),
            (800, "trolleybus"),
            (900, "tram"),
            (1000, "ferry"),
            (1200, "ferry"),
            (1100, "air"),
            (1300, "aerial_lift"),
            (1400, "funicular"),
            (1501, "taxi"),
            (1702, "other"),
            (8, "other"),
        ] {
            assert_eq!(transport_mode(t), m, "{t}");
        }
    }

    #[test]
    fn reads_a_directory_and_a_zip_alike() {
        let dir = tempfile::tempdir().unwrap();
        let feed = dir.path().join("feed");
        write_dir(&feed, &feed_files());
        let zipped = dir.path().join("feed.zip");
        write_zip(&zipped, "", &feed_files());
        let nested = dir.path().join("nested.zip");
        write_zip(&nested, "gtfs/", &feed_files());
        let (s, from_dir) = read(&feed).expect("directory");
        let (s2, from_zip) = read(&zipped).expect("zip");
        let (_, from_nested) = read(&nested).expect("zip with a folder");
        assert_eq!(from_dir, from_zip);
        assert_eq!(from_dir, from_nested);
        assert_eq!(s, s2);
        assert_eq!(
            (s.stops, s.stations, s.entrances, s.other_locations),
            (4, 1, 1, 1)
        );
        assert_eq!((s.routes, s.trips, s.stop_times), (3, 4, 7));
        assert!(s.route_types_computed);
        assert_eq!(s.trips_with_unknown_route, 1);
        assert_eq!(s.stop_times_with_unknown_trip, 1);
        assert_eq!(s.stop_times_with_unknown_stop, 1);
        assert_eq!(s.without_service, 1, "ghost");
        assert_eq!(s.by_mode["bus"], 4, "{:?}", s.by_mode);

        let central = by_id(&from_dir, "central");
        assert_eq!(central["type"], "GtfsStop");
        assert_eq!(central["name"], "Central Station, Main Hall");
        assert_eq!(central["locationType"], 1);
        assert_eq!(
            central["location"],
            json!({"type": "Point", "coordinates": [24.941, 60.171]})
        );
        assert_eq!(central["wheelChairAccessible"], "1");
        // the station: the union of its platforms (tram on A, bus and coach on B)
        assert_eq!(central["routeType"], json!([0, 3, 202]));
        assert_eq!(central["transportMode"], json!(["bus", "tram"]));
        assert_eq!(central["category"], json!(["public_transport_stop"]));

        let a = by_id(&from_dir, "central-a");
        assert_eq!(a["routeType"], json!([0]));
        assert_eq!(a["transportMode"], json!(["tram"]));
        assert_eq!(a["hasParentStation"], "urn:ngsi-ld:GtfsStop:central");
        assert_eq!(
            (&a["platformCode"], &a["code"]),
            (&json!("A"), &json!("CA"))
        );
        let b = by_id(&from_dir, "central-b");
        assert_eq!(b["routeType"], json!([3, 202]));
        assert_eq!(b["transportMode"], json!(["bus"]));
        assert_eq!(b["locationType"], 0, "an empty location_type is a stop");
        let entrance = by_id(&from_dir, "central-e1");
        assert_eq!(entrance["routeType"], json!([0, 3, 202]), "its station's");
        assert_eq!(entrance["category"], json!(["public_transport_stop"]));
        let market = by_id(&from_dir, "market");
        assert_eq!(market["name"], "Market \"Square\"");
        assert_eq!(market["routeType"], json!([0, 3]));
        let ghost = by_id(&from_dir, "ghost");
        assert!(ghost.get("routeType").is_none() && ghost.get("transportMode").is_none());
        assert_eq!(ghost["category"], json!(["public_transport_stop"]));
        let area = by_id(&from_dir, "central-a-ba");
        assert!(area.get("location").is_none() && area.get("category").is_none());
        assert_eq!(area["routeType"], json!([0]), "its platform's");
    }

    #[test]
    fn stops_without_the_schedule_tables_have_no_route_types() {
        let dir = tempfile::tempdir().unwrap();
        write_dir(dir.path(), &[("stops.txt", STOPS), ("routes.txt", ROUTES)]);
        let (s, entities) = read(dir.path()).expect("stops alone");
        assert!(!s.route_types_computed);
        assert_eq!(s.missing_tables, ["trips.txt", "stop_times.txt"]);
        assert_eq!(entities.len(), 7);
        assert!(entities.iter().all(|e| e.get("routeType").is_none()));
        assert_eq!(s.without_service, 0);
    }

    #[test]
    fn ids_are_escaped_into_urns() {
        let dir = tempfile::tempdir().unwrap();
        write_dir(
            dir.path(),
            &[(
                "stops.txt",
                "stop_id,stop_lat,stop_lon,parent_station\nHSL 1020/ä#1,60,25,st 1\nst 1,60,25,\n",
            )],
        );
        let (_, entities) = read(dir.path()).expect("valid");
        assert_eq!(
            entities[0]["id"],
            "urn:ngsi-ld:GtfsStop:HSL%201020%2F%C3%A4%231"
        );
        assert_eq!(
            entities[0]["hasParentStation"],
            "urn:ngsi-ld:GtfsStop:st%201"
        );
    }

    #[test]
    fn bad_input_names_the_table_the_line_and_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let zipped = dir.path().join("feed.zip");
        write_zip(&zipped, "", &[("routes.txt", ROUTES)]);
        assert_eq!(
            err_text(&zipped),
            format!(
                "{}:stops.txt: missing: a GTFS feed needs stops.txt",
                zipped.display()
            )
        );
        let stops_case = |name: &str, stops: &str| -> String {
            let path = dir.path().join(format!("{name}.zip"));
            write_zip(&path, "", &[("stops.txt", stops), ("routes.txt", ROUTES)]);
            err_text(&path)
        };
        let e = stops_case("nolat", "stop_id,stop_name,stop_lon\ns1,x,24.9\n");
        assert!(
            e.ends_with("nolat.zip:stops.txt: line 1: missing required column stop_lat (columns: stop_id, stop_name, stop_lon)"),
            "{e}"
        );
        let e = stops_case(
            "badlat",
            "stop_id,stop_lat,stop_lon\ns1,60.1,24.9\ns2,sixty,24.9\n",
        );
        assert!(
            e.ends_with("badlat.zip:stops.txt: line 3: stop_lat \"sixty\" is not a number"),
            "{e}"
        );
        let e = stops_case(
            "range",
            "stop_id,stop_lat,stop_lon\r\ns1,60.1,24.9\r\n\"s2\",60.1,\"190.5\"\r\n",
        );
        assert!(
            e.ends_with("range.zip:stops.txt: line 3: stop_lon 190.5 is out of range (−180..180)"),
            "{e}"
        );
        let e = stops_case("lat95", "stop_id,stop_lat,stop_lon\ns1,95,24.9\n");
        assert!(
            e.contains("line 2: stop_lat 95 is out of range (−90..90)"),
            "{e}"
        );
        let e = stops_case("nan", "stop_id,stop_lat,stop_lon\ns1,NaN,24.9\n");
        assert!(e.contains("stop_lat \"NaN\" is not a number"), "{e}");
        let e = stops_case("empty", "stop_id,stop_lat,stop_lon\ns1,,\n");
        assert!(
            e.contains("line 2: stop_lat and stop_lon are required for location_type 0"),
            "{e}"
        );
        let e = stops_case("dup", "stop_id,stop_lat,stop_lon\ns1,1,2\ns2,1,2\ns1,1,2\n");
        assert!(
            e.contains("line 4: stop_id \"s1\" appears twice (first on line 2)"),
            "{e}"
        );
        let e = stops_case(
            "type",
            "stop_id,stop_lat,stop_lon,location_type\ns1,1,2,7\n",
        );
        assert!(e.contains("location_type \"7\" is not one of"), "{e}");
        // a quoted field spanning lines: the error names the line the record starts on
        let e = stops_case(
            "multiline",
            "stop_id,stop_name,stop_lat,stop_lon\ns1,\"two\nlines\",1,2\ns2,x,1,north\n",
        );
        assert!(
            e.contains("line 4: stop_lon \"north\" is not a number"),
            "{e}"
        );

        // errors in the other tables, in a directory feed
        let feed = dir.path().join("badroutes");
        write_dir(
            &feed,
            &[
                ("stops.txt", STOPS),
                ("routes.txt", "route_id,route_type\nT1,0\nB2,bus\n"),
                ("trips.txt", TRIPS),
                ("stop_times.txt", STOP_TIMES),
            ],
        );
        let e = err_text(&feed);
        assert!(
            e.contains("routes.txt: line 3: route_type \"bus\" is not a route type code"),
            "{e}"
        );
        std::fs::write(feed.join("routes.txt"), ROUTES).unwrap();
        std::fs::write(
            feed.join("stop_times.txt"),
            "trip_id,arrival_time\nt1,08:00\n",
        )
        .unwrap();
        let e = err_text(&feed);
        assert!(
            e.contains("stop_times.txt: line 1: missing required column stop_id"),
            "{e}"
        );
        let not_zip = dir.path().join("feed.txt");
        std::fs::write(&not_zip, "stop_id\n").unwrap();
        assert!(err_text(&not_zip).contains("not a GTFS feed"));
        assert!(err_text(Path::new("/nonexistent/feed.zip")).contains("cannot open"));
    }

    #[test]
    fn reports_progress_on_long_stop_times() {
        let dir = tempfile::tempdir().unwrap();
        let mut times = String::from("trip_id,stop_id\n");
        for i in 0..250_000 {
            times.push_str(if i % 2 == 0 {
                "t1,market\n"
            } else {
                "b1,ghost\n"
            });
        }
        write_dir(
            dir.path(),
            &[
                ("stops.txt", STOPS),
                ("routes.txt", ROUTES),
                ("trips.txt", TRIPS),
                ("stop_times.txt", &times),
            ],
        );
        let calls = std::cell::RefCell::new(Vec::new());
        let progress = |n: u64| calls.borrow_mut().push(n);
        let opts = GtfsOptions {
            progress: Some(&progress),
            ..Default::default()
        };
        let mut n = 0;
        let s = read_gtfs(dir.path(), &opts, &mut |_| {
            n += 1;
            Ok(())
        })
        .expect("valid");
        assert_eq!((s.stop_times, n), (250_000, 7));
        assert_eq!(*calls.borrow(), [100_000, 200_000]);
        // only market (tram) and ghost (bus) are served now
        assert_eq!(s.without_service, 4);
    }
}
