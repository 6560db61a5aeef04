//! CityJSON geometry: boundaries decoded into faces of vertex indices, footprint outlines (as rings of vertex
//! indices) and solid volumes, all computed in metric coordinates.

use std::collections::BTreeMap;

use serde_json::Value;

pub(super) type P3 = [f64; 3];

/// One surface: its rings (exterior first) as vertex indices, and its semantic surface type if any.
#[derive(Debug, Clone)]
pub(super) struct Face {
    pub rings: Vec<Vec<usize>>,
    pub semantic: Option<String>,
}

/// A decoded geometry. Surface geometries hold one pseudo-solid with one shell.
#[derive(Debug, Clone)]
pub(super) struct Geom {
    pub lod: String,
    pub lod_num: f64,
    pub solid: bool,
    /// solids → shells → faces
    pub solids: Vec<Vec<Vec<Face>>>,
}

impl Geom {
    pub fn faces(&self) -> impl Iterator<Item = &Face> {
        self.solids.iter().flatten().flatten()
    }
}

/// How a footprint was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FootprintMethod {
    Lod0,
    GroundSurface,
    BottomFaces,
    UpwardFaces,
    ConvexHull,
}

impl FootprintMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            FootprintMethod::Lod0 => "lod0",
            FootprintMethod::GroundSurface => "groundSurface",
            FootprintMethod::BottomFaces => "bottomFaces",
            FootprintMethod::UpwardFaces => "upwardFaces",
            FootprintMethod::ConvexHull => "convexHull",
        }
    }
}

/// A polygon as rings of vertex indices, not closed (the first index is not repeated); exterior counter-clockwise,
/// holes clockwise.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct IdxPolygon {
    pub exterior: Vec<usize>,
    pub holes: Vec<Vec<usize>>,
}

/// Decodes one CityJSON geometry object. `Ok(None)` for geometries without surfaces (points, lines, instances).
pub(super) fn parse_geometry(g: &Value, nverts: usize) -> Result<Option<Geom>, String> {
    let ty = g
        .get("type")
        .and_then(Value::as_str)
        .ok_or("has no string \"type\"")?;
    let (depth, solid) = match ty {
        "MultiSurface" | "CompositeSurface" => (0, false),
        "Solid" => (1, true),
        "MultiSolid" | "CompositeSolid" => (2, true),
        "MultiPoint" | "MultiLineString" | "GeometryInstance" => return Ok(None),
        other => return Err(format!("unknown geometry type {other:?}")),
    };
    let lod = match g.get("lod") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return Err(format!("lod must be a string or number, got {other}")),
        None => return Err("has no lod".into()),
    };
    let lod_num = lod
        .parse::<f64>()
        .ok()
        .filter(|l| l.is_finite() && (0.0..10.0).contains(l))
        .ok_or_else(|| format!("lod {lod:?} is not a level of detail"))?;
    let boundaries = g.get("boundaries").ok_or("has no boundaries")?;
    let sem = g.get("semantics");
    let surfaces = sem
        .and_then(|s| s.get("surfaces"))
        .and_then(Value::as_array);
    let values = sem.and_then(|s| s.get("values"));
    let semantic = |path: &[usize]| -> Option<String> {
        let mut v = values?;
        for &i in path {
            v = v.as_array()?.get(i)?;
        }
        let idx = usize::try_from(v.as_u64()?).ok()?;
        surfaces?
            .get(idx)?
            .get("type")?
            .as_str()
            .map(str::to_string)
    };
    let mut solids = Vec::new();
    match depth {
        0 => solids.push(vec![surfaces_of(boundaries, nverts, &|i| semantic(&[i]))?]),
        1 => solids.push(shells_of(boundaries, nverts, &|s, i| semantic(&[s, i]))?),
        _ => {
            let list = boundaries
                .as_array()
                .ok_or("boundaries must be an array of solids")?;
            for (k, sv) in list.iter().enumerate() {
                solids.push(shells_of(sv, nverts, &|s, i| semantic(&[k, s, i]))?);
            }
        }
    }
    Ok(Some(Geom {
        lod,
        lod_num,
        solid,
        solids,
    }))
}

fn shells_of(
    v: &Value,
    nverts: usize,
    sem: &dyn Fn(usize, usize) -> Option<String>,
) -> Result<Vec<Vec<Face>>, String> {
    let list = v
        .as_array()
        .ok_or("boundaries: a solid must be an array of shells")?;
    list.iter()
        .enumerate()
        .map(|(s, shell)| surfaces_of(shell, nverts, &|i| sem(s, i)))
        .collect()
}

fn surfaces_of(
    v: &Value,
    nverts: usize,
    sem: &dyn Fn(usize) -> Option<String>,
) -> Result<Vec<Face>, String> {
    let list = v
        .as_array()
        .ok_or("boundaries: a shell or multi-surface must be an array of surfaces")?;
    let mut faces = Vec::with_capacity(list.len());
    for (i, surface) in list.iter().enumerate() {
        let rings = surface
            .as_array()
            .ok_or("boundaries: a surface must be an array of rings")?;
        let mut out = Vec::with_capacity(rings.len());
        for ring in rings {
            let idx = ring
                .as_array()
                .ok_or("boundaries: a ring must be an array of vertex indices")?;
            let mut r = Vec::with_capacity(idx.len());
            for x in idx {
                let n = x.as_u64().ok_or_else(|| {
                    format!("boundaries: vertex index {x} is not a non-negative integer")
                })?;
                let n = usize::try_from(n).ok().filter(|&n| n < nverts).ok_or_else(|| {
                    format!("boundaries: vertex index {n} is out of range (the file has {nverts} vertices)")
                })?;
                r.push(n);
            }
            out.push(r);
        }
        faces.push(Face {
            rings: out,
            semantic: sem(i),
        });
    }
    Ok(faces)
}

/// The footprint of a CityObject: LoD0 surfaces, else GroundSurface faces of the lowest LoD that has them, else the
/// lowest horizontal faces of the lowest LoD, else the outline of its upward-facing faces (roofs: a solid without a
/// floor), else the convex hull of every vertex.
pub(super) fn footprint(
    geoms: &[Geom],
    verts: &[P3],
) -> Option<(Vec<IdxPolygon>, FootprintMethod)> {
    let mut sorted: Vec<&Geom> = geoms.iter().collect();
    sorted.sort_by(|a, b| a.lod_num.total_cmp(&b.lod_num));
    let lod0: Vec<&Face> = sorted
        .iter()
        .filter(|g| g.lod_num < 1.0)
        .flat_map(|g| g.faces())
        .collect();
    if let Some(p) = non_empty(outline(&lod0, verts)) {
        return Some((p, FootprintMethod::Lod0));
    }
    for g in sorted.iter().filter(|g| g.lod_num >= 1.0) {
        let ground: Vec<&Face> = g
            .faces()
            .filter(|f| f.semantic.as_deref() == Some("GroundSurface"))
            .collect();
        if let Some(p) = non_empty(outline(&ground, verts)) {
            return Some((p, FootprintMethod::GroundSurface));
        }
    }
    if let Some(g) = sorted.iter().find(|g| g.lod_num >= 1.0) {
        if let Some(p) = non_empty(outline(&bottom_faces(g, verts), verts)) {
            return Some((p, FootprintMethod::BottomFaces));
        }
        if let Some(p) = non_empty(outline(&upward_faces(g, verts), verts)) {
            return Some((p, FootprintMethod::UpwardFaces));
        }
    }
    let all: Vec<usize> = geoms
        .iter()
        .flat_map(|g| g.faces())
        .flat_map(|f| f.rings.iter().flatten().copied())
        .collect();
    let hull = convex_hull(&all, verts);
    (hull.len() >= 3).then(|| {
        (
            vec![IdxPolygon {
                exterior: hull,
                holes: Vec::new(),
            }],
            FootprintMethod::ConvexHull,
        )
    })
}

fn non_empty(p: Vec<IdxPolygon>) -> Option<Vec<IdxPolygon>> {
    (!p.is_empty()).then_some(p)
}

/// Faces of `g` that are horizontal (normal within ~8° of vertical) and lie within 0.1 m of the lowest vertex.
fn bottom_faces<'a>(g: &'a Geom, verts: &[P3]) -> Vec<&'a Face> {
    let zmin = g
        .faces()
        .flat_map(|f| f.rings.iter().flatten())
        .map(|&i| verts[i][2])
        .fold(f64::INFINITY, f64::min);
    g.faces()
        .filter(|f| {
            let Some(ext) = f.rings.first() else {
                return false;
            };
            let n = newell(ext, verts);
            let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
            len > 0.0 && n[2].abs() / len > 0.99 && ext.iter().all(|&i| verts[i][2] - zmin < 0.1)
        })
        .collect()
}

/// Faces of `g` whose (outward) normal points up: roofs and other top surfaces, which cover the footprint once.
fn upward_faces<'a>(g: &'a Geom, verts: &[P3]) -> Vec<&'a Face> {
    g.faces()
        .filter(|f| {
            let Some(ext) = f.rings.first() else {
                return false;
            };
            let n = newell(ext, verts);
            let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
            len > 0.0 && n[2] / len > 0.01
        })
        .collect()
}

/// Newell's normal of a ring (its length is twice the ring's area).
fn newell(ring: &[usize], verts: &[P3]) -> P3 {
    let mut n = [0.0; 3];
    if ring.is_empty() {
        return n;
    }
    let o = verts[ring[0]];
    for k in 0..ring.len() {
        let a = sub(verts[ring[k]], o);
        let b = sub(verts[ring[(k + 1) % ring.len()]], o);
        n[0] += (a[1] - b[1]) * (a[2] + b[2]);
        n[1] += (a[2] - b[2]) * (a[0] + b[0]);
        n[2] += (a[0] - b[0]) * (a[1] + b[1]);
    }
    n
}

fn sub(a: P3, b: P3) -> P3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// Twice the signed area of a ring projected on the xy plane (positive = counter-clockwise).
fn area2(ring: &[usize], verts: &[P3]) -> f64 {
    if ring.len() < 3 {
        return 0.0;
    }
    let o = verts[ring[0]];
    let mut s = 0.0;
    for k in 0..ring.len() {
        let a = verts[ring[k]];
        let b = verts[ring[(k + 1) % ring.len()]];
        s += (a[0] - o[0]) * (b[1] - o[1]) - (b[0] - o[0]) * (a[1] - o[1]);
    }
    s
}

type Key = (i64, i64);

fn key(p: P3) -> Key {
    (
        (p[0] * 1000.0).round() as i64,
        (p[1] * 1000.0).round() as i64,
    )
}

/// The 2D outline of a set of faces: faces are oriented counter-clockwise in xy, edges shared by two faces in
/// opposite directions cancel, and the remaining edges are chained into rings (vertices are matched at 1 mm).
fn outline(faces: &[&Face], verts: &[P3]) -> Vec<IdxPolygon> {
    let mut count: BTreeMap<(Key, Key), i64> = BTreeMap::new();
    let mut rep: BTreeMap<Key, usize> = BTreeMap::new();
    for f in faces {
        let Some(ext) = f.rings.first() else { continue };
        let a = area2(ext, verts);
        if a.abs() < 1e-6 {
            continue;
        }
        for ring in &f.rings {
            let mut r: Vec<usize> = ring.clone();
            if a < 0.0 {
                r.reverse();
            }
            for k in 0..r.len() {
                let (p, q) = (r[k], r[(k + 1) % r.len()]);
                let (kp, kq) = (key(verts[p]), key(verts[q]));
                rep.entry(kp).or_insert(p);
                if kp == kq {
                    continue;
                }
                match count.get_mut(&(kq, kp)) {
                    Some(c) if *c > 0 => *c -= 1,
                    _ => *count.entry((kp, kq)).or_insert(0) += 1,
                }
            }
        }
    }
    let mut out_edges: BTreeMap<Key, Vec<Key>> = BTreeMap::new();
    let mut total = 0usize;
    for (&(a, b), &c) in &count {
        for _ in 0..c.max(0) {
            out_edges.entry(a).or_default().push(b);
            total += 1;
        }
    }
    for v in out_edges.values_mut() {
        v.reverse(); // pop() then takes the smallest first: deterministic
    }
    let mut rings: Vec<Vec<usize>> = Vec::new();
    // Rings start at the smallest vertex that still has an edge out. Tracing a ring only removes edges, so that
    // vertex never moves back: one walk over the vertices in order finds every start (a search from the first
    // vertex for each ring was quadratic in the number of rings).
    let starts: Vec<Key> = out_edges.keys().copied().collect();
    for start in starts {
        while out_edges.get(&start).is_some_and(|v| !v.is_empty()) {
            rings.extend(trace_ring(&mut out_edges, start, total, &rep));
        }
    }
    let mut outers: Vec<(f64, [f64; 4], IdxPolygon)> = Vec::new();
    let mut holes = Vec::new();
    for r in rings {
        let a = area2(&r, verts);
        if a > 1e-6 {
            outers.push((
                a,
                bbox(&r, verts),
                IdxPolygon {
                    exterior: r,
                    holes: Vec::new(),
                },
            ));
        } else if a < -1e-6 {
            holes.push(r);
        }
    }
    outers.sort_by(|a, b| a.0.total_cmp(&b.0)); // smallest first, so a hole goes to the innermost outer ring
    for h in holes {
        let p = verts[h[0]];
        let q = verts[h[1 % h.len()]];
        let mid = [(p[0] + q[0]) / 2.0, (p[1] + q[1]) / 2.0];
        // the bounding box first: every hole is tested against every outer ring, which must stay cheap
        if let Some((_, _, o)) = outers.iter_mut().find(|(_, b, o)| {
            (b[0]..=b[2]).contains(&mid[0])
                && (b[1]..=b[3]).contains(&mid[1])
                && contains(&o.exterior, verts, mid)
        }) {
            o.holes.push(h);
        }
    }
    outers.sort_by(|a, b| b.0.total_cmp(&a.0)); // largest first
    outers.into_iter().map(|(_, _, p)| p).collect()
}

/// The xy bounding box of a ring: min x, min y, max x, max y.
fn bbox(ring: &[usize], verts: &[P3]) -> [f64; 4] {
    ring.iter().fold(
        [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ],
        |b, &i| {
            let v = verts[i];
            [
                b[0].min(v[0]),
                b[1].min(v[1]),
                b[2].max(v[0]),
                b[3].max(v[1]),
            ]
        },
    )
}

/// Follows edges out of `start` (removing them) until back at `start`: the ring's vertices when it closes with at
/// least 3 of them.
fn trace_ring(
    out_edges: &mut BTreeMap<Key, Vec<Key>>,
    start: Key,
    total: usize,
    rep: &BTreeMap<Key, usize>,
) -> Option<Vec<usize>> {
    let mut ring = vec![start];
    let mut cur = start;
    for _ in 0..=total {
        let next = out_edges.get_mut(&cur).and_then(Vec::pop)?;
        if next == start {
            return (ring.len() >= 3)
                .then(|| ring.iter().filter_map(|k| rep.get(k).copied()).collect());
        }
        ring.push(next);
        cur = next;
    }
    None
}

/// Even-odd point-in-ring test in xy.
fn contains(ring: &[usize], verts: &[P3], p: [f64; 2]) -> bool {
    let mut inside = false;
    let n = ring.len();
    for k in 0..n {
        let a = verts[ring[k]];
        let b = verts[ring[(k + n - 1) % n]];
        if (a[1] > p[1]) != (b[1] > p[1])
            && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0]
        {
            inside = !inside;
        }
    }
    inside
}

/// The convex hull in xy of the given vertices (Andrew's monotone chain), counter-clockwise.
fn convex_hull(idx: &[usize], verts: &[P3]) -> Vec<usize> {
    let mut pts: Vec<usize> = idx.to_vec();
    pts.sort_by(|&a, &b| {
        verts[a][0]
            .total_cmp(&verts[b][0])
            .then(verts[a][1].total_cmp(&verts[b][1]))
    });
    pts.dedup_by(|a, b| key(verts[*a]) == key(verts[*b]));
    if pts.len() < 3 {
        return Vec::new();
    }
    let cross = |o: usize, a: usize, b: usize| {
        let (o, a, b) = (verts[o], verts[a], verts[b]);
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut hull: Vec<usize> = Vec::with_capacity(pts.len() * 2);
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &usize>> = if pass == 0 {
            Box::new(pts.iter())
        } else {
            Box::new(pts.iter().rev())
        };
        for &p in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    if hull.len() < 3 || area2(&hull, verts).abs() < 1e-6 {
        return Vec::new();
    }
    hull
}

/// The volume of the solids of `g`, or None when `g` is not a solid or a shell is open other than at its bottom.
///
/// By the divergence theorem with the field (0, 0, z − z₀), z₀ the lowest vertex of the solid, the volume is the sum
/// over fan-triangulated faces of (signed xy area × mean height above z₀); a face at z₀ adds nothing, so a shell
/// without its floor (as LoD1 extrusions often come) gives the volume down to z₀, and inner shells subtract. A shell
/// counts as closed when its vector area has no horizontal part (walls close) and no vertical part other than a
/// missing floor.
pub(super) fn volume(g: &Geom, verts: &[P3]) -> Option<f64> {
    if !g.solid || g.solids.is_empty() {
        return None;
    }
    let mut total = 0.0;
    for solid in &g.solids {
        let z0 = solid
            .iter()
            .flatten()
            .flat_map(|f| f.rings.iter().flatten())
            .map(|&i| verts[i][2])
            .fold(f64::INFINITY, f64::min);
        let mut v = 0.0;
        let (mut vec_area, mut abs_area) = ([0.0; 3], 0.0);
        for shell in solid {
            for f in shell {
                for ring in &f.rings {
                    let n = newell(ring, verts);
                    vec_area = [vec_area[0] + n[0], vec_area[1] + n[1], vec_area[2] + n[2]];
                    abs_area += (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
                    for k in 1..ring.len().saturating_sub(1) {
                        let (a, b, c) = (verts[ring[0]], verts[ring[k]], verts[ring[k + 1]]);
                        let area_xy =
                            ((b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1])) / 2.0;
                        v += area_xy * ((a[2] + b[2] + c[2]) / 3.0 - z0);
                    }
                }
            }
        }
        // Newell vectors are twice the areas: compare like with like
        let tol = 1e-3 * abs_area;
        let walls_open = (vec_area[0] * vec_area[0] + vec_area[1] * vec_area[1]).sqrt() > tol;
        let top_open = vec_area[2].abs() > tol && vec_area[2].signum() != v.signum();
        if abs_area <= 0.0 || walls_open || top_open {
            return None;
        }
        total += v.abs();
    }
    total.is_finite().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cube() -> Vec<P3> {
        let mut v = Vec::new();
        for z in [0.0, 3.0] {
            for (x, y) in [(0.0, 0.0), (2.0, 0.0), (2.0, 1.0), (0.0, 1.0)] {
                v.push([x + 1000.0, y + 5000.0, z]);
            }
        }
        v
    }

    /// A 2 x 1 x 3 box as a Solid with outward faces, bottom triangulated, given semantics when asked.
    fn box_geom(semantics: bool) -> Value {
        let mut g = json!({"type": "Solid", "lod": "1.2", "boundaries": [[
            [[0, 2, 1]], [[0, 3, 2]], [[4, 5, 6, 7]],
            [[0, 1, 5, 4]], [[1, 2, 6, 5]], [[2, 3, 7, 6]], [[3, 0, 4, 7]]
        ]]});
        if semantics {
            g["semantics"] = json!({"surfaces": [{"type": "GroundSurface"}, {"type": "RoofSurface"},
                {"type": "WallSurface"}], "values": [[0, 0, 1, 2, 2, 2, 2]]});
        }
        g
    }

    #[test]
    fn volume_of_a_box_with_polygon_and_triangle_faces() {
        let v = cube();
        let g = parse_geometry(&box_geom(false), v.len()).unwrap().unwrap();
        assert!((volume(&g, &v).unwrap() - 6.0).abs() < 1e-9);
        // a box open at a wall or at the top has no volume; open at the bottom, it still has
        let mut open = g.clone();
        open.solids[0][0].pop();
        assert_eq!(volume(&open, &v), None);
        let mut open = g.clone();
        open.solids[0][0].remove(2);
        assert_eq!(volume(&open, &v), None);
        let mut open = g.clone();
        open.solids[0][0].drain(0..2);
        assert!((volume(&open, &v).unwrap() - 6.0).abs() < 1e-9);
    }

    #[test]
    fn footprints_from_ground_surfaces_and_bottom_faces_and_hull() {
        let v = cube();
        for (sem, method) in [
            (true, FootprintMethod::GroundSurface),
            (false, FootprintMethod::BottomFaces),
        ] {
            let g = parse_geometry(&box_geom(sem), v.len()).unwrap().unwrap();
            let (p, m) = footprint(&[g], &v).unwrap();
            assert_eq!(m, method);
            assert_eq!(p.len(), 1);
            let mut ext = p[0].exterior.clone();
            assert!(area2(&ext, &v) > 0.0);
            assert!((area2(&ext, &v) / 2.0 - 2.0).abs() < 1e-9);
            ext.sort();
            assert_eq!(ext, vec![0, 1, 2, 3]);
        }
        let ms =
            json!({"type": "MultiSurface", "lod": 2, "boundaries": [[[6, 5, 4]], [[0, 1, 5, 4]]]});
        let g = parse_geometry(&ms, v.len()).unwrap().unwrap();
        let (p, m) = footprint(&[g], &v).unwrap();
        // no horizontal face at the bottom, none facing up (the triangle on top faces down): the hull
        assert_eq!(m, FootprintMethod::ConvexHull);
        assert_eq!(p[0].exterior.len(), 3);
        let ms =
            json!({"type": "MultiSurface", "lod": 2, "boundaries": [[[4, 5, 6]], [[0, 1, 5, 4]]]});
        let g = parse_geometry(&ms, v.len()).unwrap().unwrap();
        assert_eq!(footprint(&[g], &v).unwrap().1, FootprintMethod::UpwardFaces);
    }

    #[test]
    fn outline_keeps_holes() {
        // a 3x3 square with a 1x1 hole, as one face with an inner ring
        let mut v = Vec::new();
        for (x, y) in [
            (0.0, 0.0),
            (3.0, 0.0),
            (3.0, 3.0),
            (0.0, 3.0),
            (1.0, 1.0),
            (1.0, 2.0),
            (2.0, 2.0),
            (2.0, 1.0),
        ] {
            v.push([x, y, 0.0]);
        }
        let f = Face {
            rings: vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]],
            semantic: None,
        };
        let p = outline(&[&f], &v);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].holes.len(), 1);
        assert!(area2(&p[0].holes[0], &v) < 0.0);
    }

    #[test]
    fn rejects_bad_boundaries() {
        let g = json!({"type": "Solid", "lod": "1", "boundaries": [[[[0, 1, 99]]]]});
        assert!(parse_geometry(&g, 8).unwrap_err().contains("out of range"));
        let g = json!({"type": "Solid", "lod": "1", "boundaries": [[[[0, 1, -1]]]]});
        assert!(parse_geometry(&g, 8).is_err());
        let g = json!({"type": "Solid", "lod": "1", "boundaries": [[[0, 1, 2]]]});
        assert!(parse_geometry(&g, 8).is_err());
        let g = json!({"type": "Blob", "lod": "1", "boundaries": []});
        assert!(parse_geometry(&g, 8).is_err());
        let g = json!({"type": "Solid", "lod": "high", "boundaries": []});
        assert!(parse_geometry(&g, 8).is_err());
        assert!(parse_geometry(
            &json!({"type": "MultiPoint", "lod": "1", "boundaries": [0]}),
            8
        )
        .unwrap()
        .is_none());
    }

    /// One LoD0 surface of 40,000 separate triangles (5 MB of CityJSON): the outline tracer searched for each ring's
    /// start from the first vertex again, quadratic — over four minutes for 60,000 triangles.
    #[test]
    fn outline_of_many_separate_faces_takes_linear_time() {
        let mut v = Vec::new();
        let mut faces = Vec::new();
        for i in 0..40_000 {
            let (x, y) = (f64::from(i % 200) * 10.0, f64::from(i / 200) * 10.0);
            let b = v.len();
            v.extend([[x, y, 0.0], [x + 5.0, y, 0.0], [x, y + 5.0, 0.0]]);
            faces.push(Face {
                rings: vec![vec![b, b + 1, b + 2]],
                semantic: None,
            });
        }
        let refs: Vec<&Face> = faces.iter().collect();
        let start = std::time::Instant::now();
        let p = outline(&refs, &v);
        assert_eq!(p.len(), 40_000);
        assert!(p
            .iter()
            .all(|p| p.exterior.len() == 3 && p.holes.is_empty()));
        assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
    }

    /// Squares with a hole each: every hole finds its own square among all of them.
    #[test]
    fn holes_go_to_their_own_outer_ring() {
        let mut v = Vec::new();
        let mut faces = Vec::new();
        for i in 0..2_000 {
            let (x, y) = (f64::from(i % 50) * 10.0, f64::from(i / 50) * 10.0);
            let b = v.len();
            for (dx, dy) in [(0.0, 0.0), (6.0, 0.0), (6.0, 6.0), (0.0, 6.0)] {
                v.push([x + dx, y + dy, 0.0]);
            }
            for (dx, dy) in [(2.0, 2.0), (2.0, 4.0), (4.0, 4.0), (4.0, 2.0)] {
                v.push([x + dx, y + dy, 0.0]);
            }
            faces.push(Face {
                rings: vec![(b..b + 4).collect(), (b + 4..b + 8).collect()],
                semantic: None,
            });
        }
        let refs: Vec<&Face> = faces.iter().collect();
        let p = outline(&refs, &v);
        assert_eq!(p.len(), 2_000);
        for poly in &p {
            assert_eq!(poly.holes.len(), 1);
            // the hole's vertices are 4..8 of the same square as the outer ring's
            assert_eq!(poly.holes[0][0] / 8, poly.exterior[0] / 8);
        }
    }

    #[test]
    fn hull_of_points() {
        let v: Vec<P3> = [
            (0.0, 0.0),
            (4.0, 0.0),
            (2.0, 1.0),
            (4.0, 4.0),
            (0.0, 4.0),
            (2.0, 2.0),
        ]
        .iter()
        .map(|&(x, y)| [x, y, 1.0])
        .collect();
        let h = convex_hull(&[0, 1, 2, 3, 4, 5, 0, 3], &v);
        assert_eq!(h.len(), 4);
        assert!(area2(&h, &v) > 0.0);
        assert!(convex_hull(&[0, 1], &v).is_empty());
    }
}
