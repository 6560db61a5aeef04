//! Reads CSV files (a header row, RFC 4180 quoting) into entities of a type the user names, located by lon/lat
//! columns or a WKT column (POINT, LINESTRING, POLYGON); numbers become numbers, empty cells are skipped.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use serde_json::{json, Map, Value};
use twin_model::Entity;

use crate::geojson::{check_entity_type, Builder};
use crate::ImportError;

/// How to read a CSV file.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// The NGSI-LD type of every entity.
    pub entity_type: String,
    /// The column holding the id (default: the data row number).
    pub id_column: Option<String>,
    /// The longitude column (default: found by name).
    pub lon_column: Option<String>,
    /// The latitude column (default: found by name).
    pub lat_column: Option<String>,
    /// A column of WKT geometries (instead of lon/lat).
    pub wkt_column: Option<String>,
    /// The field separator (`,` by default).
    pub delimiter: char,
    /// The urbantwin dataset the entities belong to.
    pub dataset: Option<String>,
}

impl Default for CsvOptions {
    fn default() -> CsvOptions {
        CsvOptions {
            entity_type: String::new(),
            id_column: None,
            lon_column: None,
            lat_column: None,
            wkt_column: None,
            delimiter: ',',
            dataset: None,
        }
    }
}

/// What a read found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CsvSummary {
    /// How locations were read: `lon/lat (<lon>, <lat>)` or `wkt (<column>)`.
    pub geometry: String,
    /// Data rows read (blank lines aside).
    pub rows: usize,
    /// Entities handed to the sink.
    pub entities: usize,
    /// Rows whose coordinate cells were empty (entities without `location`).
    pub without_location: usize,
    /// Column names that were changed to be valid attribute names: original → attribute name.
    pub renamed: BTreeMap<String, String>,
}

/// Reads a CSV file and hands one entity per data row to `sink`.
///
/// The id is `urn:ngsi-ld:<Type>:<id column value>`, else the 1-based data row number. Columns are found by name
/// when not given: lon among `lon`/`lng`/`longitude`/`x`, lat among `lat`/`latitude`/`y` (any case), else a WKT
/// column `wkt`/`geometry`/`geom`. Cells that read as numbers (not `007`-style with a leading zero) become numbers.
/// Column names are sanitised as [`crate::geojson::attribute_name`] does. Errors name the `line N` of the record.
pub fn read_csv(
    path: &Path,
    options: &CsvOptions,
    sink: &mut dyn FnMut(Entity) -> Result<(), ImportError>,
) -> Result<CsvSummary, ImportError> {
    let (name, reader) = crate::error::open(path)?;
    parse_csv(reader, &name, options, sink)
}

enum Geo {
    LonLat(usize, usize),
    Wkt(usize),
}

/// Reads CSV from `reader`, one record at a time.
pub fn parse_csv(
    mut reader: impl BufRead,
    file_name: &str,
    options: &CsvOptions,
    sink: &mut dyn FnMut(Entity) -> Result<(), ImportError>,
) -> Result<CsvSummary, ImportError> {
    check_entity_type(&options.entity_type).map_err(|e| ImportError::file(file_name, e))?;
    if matches!(options.delimiter, '"' | '\n' | '\r') {
        return Err(ImportError::file(
            file_name,
            "the delimiter cannot be a quote or a line break",
        ));
    }
    let mut records = Records {
        reader: &mut reader,
        delimiter: options.delimiter,
        line: 0,
        file: file_name,
    };
    let (_, mut header) = records
        .next()?
        .ok_or_else(|| ImportError::file(file_name, "empty file: no header row"))?;
    if let Some(h) = header.first_mut() {
        *h = h.trim_start_matches('\u{feff}').to_string();
    }
    let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let mut seen = std::collections::HashSet::new();
    for h in &header {
        if !seen.insert(h.as_str()) {
            return Err(ImportError::new(
                file_name,
                "line 1",
                format!("duplicate column {h:?}"),
            ));
        }
    }
    let col = |name: &str| -> Result<usize, ImportError> {
        header.iter().position(|h| h == name).ok_or_else(|| {
            ImportError::new(
                file_name,
                "line 1",
                format!("missing column {name:?} (columns: {})", header.join(", ")),
            )
        })
    };
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| header.iter().position(|h| h.eq_ignore_ascii_case(n)))
    };
    let geo = match (
        &options.wkt_column,
        &options.lon_column,
        &options.lat_column,
    ) {
        (Some(w), _, _) => Geo::Wkt(col(w)?),
        (None, lon, lat) => {
            let lon = match lon {
                Some(c) => Some(col(c)?),
                None => find(&["lon", "lng", "longitude", "x"]),
            };
            let lat = match lat {
                Some(c) => Some(col(c)?),
                None => find(&["lat", "latitude", "y"]),
            };
            match (lon, lat, find(&["wkt", "geometry", "geom"])) {
                (Some(x), Some(y), _) => Geo::LonLat(x, y),
                (None, None, Some(w)) => Geo::Wkt(w),
                _ => {
                    return Err(ImportError::new(
                        file_name,
                        "line 1",
                        format!(
                            "missing coordinate columns: need lon (lon, lng, longitude, x) and lat (lat, latitude, y) \
                             or a WKT column (wkt, geometry, geom); columns: {}",
                            header.join(", ")
                        ),
                    ))
                }
            }
        }
    };
    let id_col = options.id_column.as_deref().map(col).transpose()?;
    let mut summary = CsvSummary {
        geometry: match geo {
            Geo::LonLat(x, y) => format!("lon/lat ({}, {})", header[x], header[y]),
            Geo::Wkt(w) => format!("wkt ({})", header[w]),
        },
        ..Default::default()
    };
    let geo_cols: Vec<usize> = match geo {
        Geo::LonLat(x, y) => vec![x, y],
        Geo::Wkt(w) => vec![w],
    };
    let mut b = Builder::new(
        file_name,
        &options.entity_type,
        options.dataset.clone(),
        "csv",
    );
    while let Some((line, row)) = records.next()? {
        if row.len() == 1 && row[0].trim().is_empty() {
            continue; // a blank line
        }
        summary.rows += 1;
        let loc = format!("line {line}");
        let err = |reason: String| ImportError::new(file_name, &loc, reason);
        if row.len() != header.len() {
            return Err(err(format!(
                "{} fields, the header has {}",
                row.len(),
                header.len()
            )));
        }
        let id = match id_col {
            Some(c) => {
                let v = row[c].trim();
                if v.is_empty() {
                    return Err(err(format!("empty id column {:?}", header[c])));
                }
                v.to_string()
            }
            None => summary.rows.to_string(),
        };
        let geometry = match geo {
            Geo::LonLat(x, y) => match (row[x].trim(), row[y].trim()) {
                ("", "") => None,
                (lon, lat) => {
                    let num = |s: &str, c: usize| {
                        s.parse::<f64>()
                            .ok()
                            .filter(|v| v.is_finite())
                            .ok_or_else(|| {
                                err(format!("column {:?}: {s:?} is not a number", header[c]))
                            })
                    };
                    let (lon, lat) = (num(lon, x)?, num(lat, y)?);
                    check_range(lon, lat).map_err(err)?;
                    Some(json!({"type": "Point", "coordinates": [lon, lat]}))
                }
            },
            Geo::Wkt(w) => match row[w].trim() {
                "" => None,
                text => parse_wkt(text).map_err(|e| err(format!("column {:?}: {e}", header[w])))?,
            },
        };
        if geometry.is_none() {
            summary.without_location += 1;
        }
        let mut props = Map::new();
        for (i, cell) in row.iter().enumerate() {
            if geo_cols.contains(&i) || cell.trim().is_empty() {
                continue;
            }
            props.insert(header[i].clone(), typed(cell));
        }
        let e = b.entity(&id, geometry, props, &loc)?;
        summary.entities += 1;
        sink(e)?;
    }
    summary.renamed = std::mem::take(&mut b.names.renamed);
    Ok(summary)
}

fn check_range(lon: f64, lat: f64) -> Result<(), String> {
    if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
        return Err(format!(
            "coordinates ({lon}, {lat}) out of range (lon −180..180, lat −90..90)"
        ));
    }
    Ok(())
}

/// A cell as a JSON value: an integer or a finite decimal number when it reads as one (but `007`, `+1`, `1e5`
/// stay text), else the text as written.
fn typed(cell: &str) -> Value {
    let t = cell.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    let numeric = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|&c| c == '.').count() <= 1
        && !digits.starts_with('.')
        && !digits.ends_with('.')
        && !(digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0."));
    if numeric {
        if let Ok(i) = t.parse::<i64>() {
            return json!(i);
        }
        if let Some(f) = t.parse::<f64>().ok().filter(|f| f.is_finite()) {
            return json!(f);
        }
    }
    Value::String(cell.to_string())
}

/// Reads records, each with the line it starts on; quoted fields may hold delimiters, `""` and line breaks.
struct Records<'a, R: BufRead> {
    reader: &'a mut R,
    delimiter: char,
    line: usize,
    file: &'a str,
}

impl<R: BufRead> Records<'_, R> {
    fn next(&mut self) -> Result<Option<(usize, Vec<String>)>, ImportError> {
        let mut buf = String::new();
        let start = self.line + 1;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false; // inside quotes
        let mut was_quoted = false; // the current field started with a quote
        loop {
            buf.clear();
            let n = self.reader.read_line(&mut buf).map_err(|e| {
                ImportError::new(
                    self.file,
                    format!("line {}", self.line + 1),
                    format!("cannot read: {e}"),
                )
            })?;
            if n == 0 {
                if quoted {
                    return Err(ImportError::new(
                        self.file,
                        format!("line {start}"),
                        "a quoted field is never closed",
                    ));
                }
                if fields.is_empty() && field.is_empty() && self.line + 1 == start {
                    return Ok(None);
                }
                fields.push(field);
                return Ok(Some((start, fields)));
            }
            self.line += 1;
            let mut chars = buf.chars().peekable();
            while let Some(c) = chars.next() {
                if quoted {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            field.push('"');
                        } else {
                            quoted = false;
                        }
                    } else {
                        field.push(c);
                    }
                } else if c == '"' && field.is_empty() && !was_quoted {
                    quoted = true;
                    was_quoted = true;
                } else if c == self.delimiter {
                    fields.push(std::mem::take(&mut field));
                    was_quoted = false;
                } else if c == '\n' || (c == '\r' && chars.peek() == Some(&'\n')) {
                    if c == '\r' {
                        chars.next();
                    }
                    fields.push(std::mem::take(&mut field));
                    return Ok(Some((start, fields)));
                } else if was_quoted && !c.is_whitespace() {
                    return Err(ImportError::new(
                        self.file,
                        format!("line {}", self.line),
                        format!("text after a closing quote (expected {:?})", self.delimiter),
                    ));
                } else if !was_quoted {
                    field.push(c);
                }
            }
        }
    }
}

/// A WKT POINT, LINESTRING or POLYGON (optionally `Z`, whose third value is dropped) as a GeoJSON geometry; `EMPTY`
/// gives None.
pub fn parse_wkt(text: &str) -> Result<Option<Value>, String> {
    let t = text.trim();
    let open = t.find('(');
    let head = open.map_or(t, |i| &t[..i]).trim().to_ascii_uppercase();
    let mut words = head.split_whitespace();
    let kind = words.next().unwrap_or("").to_string();
    let rest: Vec<&str> = words.collect();
    if rest == ["EMPTY"] || rest == ["Z", "EMPTY"] {
        return Ok(None);
    }
    if !(rest.is_empty() || rest == ["Z"]) {
        return Err(format!("unsupported WKT {head:?}"));
    }
    let body = match open {
        Some(i) if t.ends_with(')') => &t[i + 1..t.len() - 1],
        _ => return Err(format!("WKT {kind} without a closing parenthesis")),
    };
    let point = |s: &str| -> Result<Value, String> {
        let nums: Vec<&str> = s.split_whitespace().collect();
        if !(2..=3).contains(&nums.len()) {
            return Err(format!(
                "a position must be 2 or 3 numbers, got {:?}",
                s.trim()
            ));
        }
        let v = |s: &str| {
            s.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| format!("{s:?} is not a number"))
        };
        let (lon, lat) = (v(nums[0])?, v(nums[1])?);
        check_range(lon, lat)?;
        Ok(json!([lon, lat]))
    };
    let points = |s: &str| -> Result<Vec<Value>, String> { s.split(',').map(point).collect() };
    match kind.as_str() {
        "POINT" => Ok(Some(json!({"type": "Point", "coordinates": point(body)?}))),
        "LINESTRING" => Ok(Some(
            json!({"type": "LineString", "coordinates": points(body)?}),
        )),
        "POLYGON" => {
            let mut rings = Vec::new();
            let mut rest = body.trim();
            while !rest.is_empty() {
                let inner = rest
                    .strip_prefix('(')
                    .and_then(|r| r.split_once(')'))
                    .ok_or_else(|| {
                        format!(
                            "bad POLYGON ring at {:?}",
                            rest.chars().take(30).collect::<String>()
                        )
                    })?;
                rings.push(Value::Array(points(inner.0)?));
                rest = inner.1.trim_start();
                rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
            }
            if rings.is_empty() {
                return Err("a POLYGON needs at least one ring".into());
            }
            Ok(Some(json!({"type": "Polygon", "coordinates": rings})))
        }
        other => Err(format!(
            "unsupported WKT type {other:?} (POINT, LINESTRING, POLYGON)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twin_model::entity::iri;
    use twin_model::Context;

    fn read(text: &str, opts: &CsvOptions) -> Result<(CsvSummary, Vec<Entity>), ImportError> {
        let mut out = Vec::new();
        let s = parse_csv(text.as_bytes(), "t.csv", opts, &mut |e| {
            out.push(e);
            Ok(())
        })?;
        Ok((s, out))
    }

    fn opts(ty: &str) -> CsvOptions {
        CsvOptions {
            entity_type: ty.into(),
            ..Default::default()
        }
    }

    fn attr<'a>(e: &'a Entity, name: &str) -> Option<&'a Value> {
        e.attrs
            .get(&Context::core().expand(name))
            .map(|l| &l[0].value)
    }

    #[test]
    fn reads_points_with_quotes_unicode_and_numbers() {
        let text = "\u{feff}code,Name,Longitude,Latitude,zip,count,note\r\n\
                    a1,\"Kauppatori, \"\"Market\"\"\",24.95,60.167,00170,3,\r\n\
                    a2,Sörnäinen,24.96,60.18,00500,-2.5,\"two\nlines\"\n\
                    \n\
                    a3,Empty,,,,,\n";
        let o = CsvOptions {
            id_column: Some("code".into()),
            ..opts("Place")
        };
        let (s, es) = read(text, &o).unwrap();
        assert_eq!((s.rows, s.entities, s.without_location), (3, 3, 1));
        assert_eq!(s.geometry, "lon/lat (Longitude, Latitude)");
        assert_eq!(es[0].id, "urn:ngsi-ld:Place:a1");
        assert_eq!(attr(&es[0], "Name"), Some(&json!("Kauppatori, \"Market\"")));
        assert_eq!(
            attr(&es[0], "zip"),
            Some(&json!("00170")),
            "leading zeros stay text"
        );
        assert_eq!(attr(&es[0], "count"), Some(&json!(3)));
        assert!(attr(&es[0], "note").is_none(), "empty cells are skipped");
        assert_eq!(
            es[0].attrs[iri::LOCATION][0].value,
            json!({"type": "Point", "coordinates": [24.95, 60.167]})
        );
        assert_eq!(attr(&es[1], "Name"), Some(&json!("Sörnäinen")));
        assert_eq!(attr(&es[1], "count"), Some(&json!(-2.5)));
        assert_eq!(attr(&es[1], "note"), Some(&json!("two\nlines")));
        assert!(!es[2].attrs.contains_key(iri::LOCATION));
        assert!(
            attr(&es[0], "Longitude").is_none(),
            "coordinate columns are not properties"
        );
    }

    #[test]
    fn reads_wkt_and_row_numbers() {
        let text = "name;wkt\n\
                    p;POINT (1 2)\n\
                    l;LINESTRING(1 2, 3 4)\n\
                    g;\"POLYGON ((0 0, 10 0, 10 10, 0 0), (1 1, 2 1, 2 2, 1 1))\"\n";
        let o = CsvOptions {
            delimiter: ';',
            ..opts("Thing")
        };
        let (s, es) = read(text, &o).unwrap();
        assert_eq!(s.geometry, "wkt (wkt)");
        assert_eq!(es[2].id, "urn:ngsi-ld:Thing:3");
        assert_eq!(es[1].attrs[iri::LOCATION][0].value["type"], "LineString");
        let poly = &es[2].attrs[iri::LOCATION][0].value;
        assert_eq!(poly["type"], "Polygon");
        assert_eq!(poly["coordinates"].as_array().unwrap().len(), 2);
        assert_eq!(
            parse_wkt("POINT Z (1 2 3)").unwrap(),
            Some(json!({"type": "Point", "coordinates": [1.0, 2.0]}))
        );
        assert_eq!(parse_wkt("POINT EMPTY").unwrap(), None);
        assert!(parse_wkt("CIRCLE (1 2)").is_err());
    }

    #[test]
    fn bad_rows_name_the_line() {
        let err = |text: &str| read(text, &opts("P")).unwrap_err().to_string();
        assert!(err("lon,lat\n1,2\n1,2,3\n").contains("t.csv: line 3: 3 fields, the header has 2"));
        assert!(
            err("lon,lat\n1,north\n").contains("line 2: column \"lat\": \"north\" is not a number")
        );
        assert!(err("lon,lat\n1,2\n200,2\n").contains("line 3: coordinates (200, 2) out of range"));
        assert!(err("name,height\nx,1\n").contains("line 1: missing coordinate columns"));
        assert!(err("lon,lat,a\n1,2,\"open\n").contains("line 2: a quoted field is never closed"));
        assert!(err("wkt\n\"POLYGON ((0 0, 1 0, 1 1))\"\n").contains("line 2: invalid geometry"));
        let o = CsvOptions {
            lon_column: Some("east".into()),
            ..opts("P")
        };
        assert!(read("lon,lat\n1,2\n", &o)
            .unwrap_err()
            .to_string()
            .contains("line 1: missing column \"east\""));
        let o = CsvOptions {
            id_column: Some("id".into()),
            ..opts("P")
        };
        assert!(read("id,x,y\n1,1,2\n1,3,4\n", &o)
            .unwrap_err()
            .to_string()
            .contains("line 3: duplicate id"));
    }

    /// A header of 200,000 columns: the duplicate check compared each column with all before it (quadratic, minutes).
    #[test]
    fn wide_headers_are_checked_in_linear_time() {
        let names: Vec<String> = (0..200_000).map(|i| format!("c{i}")).collect();
        let start = std::time::Instant::now();
        let text = format!("lon,lat,{}\n", names.join(","));
        let (s, _) = read(&text, &opts("P")).unwrap();
        assert_eq!(s.rows, 0);
        let dup = format!("lon,lat,{},c7\n", names.join(","));
        assert!(read(&dup, &opts("P"))
            .unwrap_err()
            .to_string()
            .contains("line 1: duplicate column \"c7\""));
        assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
    }
}
