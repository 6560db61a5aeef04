//! An in-memory spatial index of one layer's features, ready to cut into tiles (geometry parsed, properties
//! extracted), so that a tile needs neither the database nor JSON parsing; updated in place where the data changed.

use std::sync::Arc;

use geo::{BoundingRect, Geometry, Intersects, Rect};
use rstar::{RTree, RTreeObject, AABB};

use crate::tiler::PropValue;

/// A feature ready to be cut: a numeric id, the entity id, its lon/lat geometry and its properties.
#[derive(Debug, Clone)]
pub struct PreparedFeature {
    pub id: u64,
    pub key: String,
    pub geometry: Geometry<f64>,
    pub properties: Vec<(Arc<str>, PropValue)>,
    bbox: [f64; 4],
}

impl PreparedFeature {
    /// A feature; `None` when the geometry is empty or not finite.
    pub fn new(
        id: u64,
        key: String,
        geometry: Geometry<f64>,
        properties: Vec<(Arc<str>, PropValue)>,
    ) -> Option<PreparedFeature> {
        let r = geometry.bounding_rect()?;
        let bbox = [r.min().x, r.min().y, r.max().x, r.max().y];
        if !bbox.iter().all(|v| v.is_finite()) {
            return None;
        }
        Some(PreparedFeature {
            id,
            key,
            geometry,
            properties,
            bbox,
        })
    }

    /// `[west, south, east, north]`.
    pub fn bbox(&self) -> [f64; 4] {
        self.bbox
    }
}

impl RTreeObject for PreparedFeature {
    type Envelope = AABB<[f64; 2]>;

    fn envelope(&self) -> Self::Envelope {
        AABB::from_corners([self.bbox[0], self.bbox[1]], [self.bbox[2], self.bbox[3]])
    }
}

fn rect(b: [f64; 4]) -> Rect<f64> {
    Rect::new(
        geo::coord! {x: b[0], y: b[1]},
        geo::coord! {x: b[2], y: b[3]},
    )
}

/// The features of one layer in an R-tree.
#[derive(Default)]
pub struct LayerIndex {
    tree: RTree<PreparedFeature>,
}

impl LayerIndex {
    /// Bulk-loads an index.
    pub fn new(features: Vec<PreparedFeature>) -> LayerIndex {
        LayerIndex {
            tree: RTree::bulk_load(features),
        }
    }

    pub fn len(&self) -> usize {
        self.tree.size()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.size() == 0
    }

    /// Features whose box meets the lon/lat box `[west, south, east, north]` (a superset of those that reach it; the
    /// tiler clips the rest away).
    pub fn candidates(&self, b: [f64; 4]) -> impl Iterator<Item = &PreparedFeature> {
        self.tree
            .locate_in_envelope_intersecting(&AABB::from_corners([b[0], b[1]], [b[2], b[3]]))
    }

    /// Replaces what the index holds in a box: removes every feature whose geometry meets the box and inserts
    /// `fresh`, which must be every current feature whose geometry meets it (what a store's `intersects` query over
    /// the box returns). Returns how many were removed.
    pub fn replace_in(&mut self, b: [f64; 4], fresh: Vec<PreparedFeature>) -> usize {
        let window = rect(b);
        let stale: Vec<PreparedFeature> = self
            .tree
            .locate_in_envelope_intersecting(&AABB::from_corners([b[0], b[1]], [b[2], b[3]]))
            .filter(|f| f.geometry.intersects(&window))
            .cloned()
            .collect();
        let removed = stale.len();
        if removed > 1000 && removed > self.tree.size() / 4 {
            // most of the layer changed (an import): one bulk load beats many removals
            let gone: std::collections::HashSet<&str> =
                stale.iter().map(|f| f.key.as_str()).collect();
            let old = std::mem::take(&mut self.tree);
            let mut keep: Vec<PreparedFeature> = old
                .into_iter()
                .filter(|f| !gone.contains(f.key.as_str()))
                .collect();
            keep.extend(fresh);
            self.tree = RTree::bulk_load(keep);
            return removed;
        }
        for f in &stale {
            self.tree.remove(f);
        }
        // the same entity may come back (it was changed in place)
        for f in fresh {
            self.tree.insert(f);
        }
        removed
    }
}

/// Features are the same feature when they stand for the same entity (what removal from the R-tree needs).
impl PartialEq for PreparedFeature {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{line_string, point};

    fn pt(key: &str, x: f64, y: f64) -> PreparedFeature {
        PreparedFeature::new(1, key.into(), Geometry::Point(point!(x: x, y: y)), vec![]).unwrap()
    }

    fn keys(ix: &LayerIndex, b: [f64; 4]) -> Vec<String> {
        let mut k: Vec<String> = ix.candidates(b).map(|f| f.key.clone()).collect();
        k.sort();
        k
    }

    #[test]
    fn replaces_exactly_what_meets_the_box() {
        let diagonal = PreparedFeature::new(
            3,
            "diag".into(),
            Geometry::LineString(line_string![(x: 0.0, y: 0.0), (x: 10.0, y: 10.0)]),
            vec![],
        )
        .unwrap();
        let mut ix = LayerIndex::new(vec![pt("a", 1.0, 1.0), pt("b", 5.0, 5.0), diagonal]);
        assert_eq!(ix.len(), 3);
        // the box [0.5,8]x[-1,0.6] meets the diagonal's box but not the line; it holds no point
        assert_eq!(ix.replace_in([8.0, 0.5, 9.0, 0.6], vec![]), 0);
        assert_eq!(ix.len(), 3);
        // "a" moved from (1,1) to (2,2): the change box covers both places
        assert_eq!(
            ix.replace_in([1.0, 1.0, 2.0, 2.0], vec![pt("a", 2.0, 2.0), ix_diag()]),
            2
        );
        assert_eq!(keys(&ix, [0.0, 0.0, 10.0, 10.0]), ["a", "b", "diag"]);
        assert_eq!(keys(&ix, [0.9, 0.9, 1.1, 1.1]), ["diag"]);
        // "b" deleted
        assert_eq!(ix.replace_in([5.0, 5.0, 5.0, 5.0], vec![ix_diag()]), 2);
        assert_eq!(keys(&ix, [0.0, 0.0, 10.0, 10.0]), ["a", "diag"]);
        assert_eq!(ix.len(), 2);
    }

    fn ix_diag() -> PreparedFeature {
        PreparedFeature::new(
            3,
            "diag".into(),
            Geometry::LineString(line_string![(x: 0.0, y: 0.0), (x: 10.0, y: 10.0)]),
            vec![],
        )
        .unwrap()
    }

    #[test]
    fn empty_geometries_are_refused() {
        let empty = Geometry::MultiPoint(geo::MultiPoint::<f64>(vec![]));
        assert!(PreparedFeature::new(1, "x".into(), empty, vec![]).is_none());
    }
}
