//! What the integration tests share: the central Helsinki extract as the importer stores it.

use std::path::PathBuf;

use twin_import::osm::{read_osm, OsmItem};
use twin_model::{Entity, Provenance};

/// The entities of `../shared/data/osm/helsinki.osm.pbf` (buildings, POIs, land use, `RoadLink`s); `None` (with a
/// printed reason) where the shared data is absent, a failure under CI.
pub fn helsinki() -> Option<Vec<Entity>> {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/osm/helsinki.osm.pbf");
    if !p.is_file() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but {} is missing", p.display());
        }
        eprintln!("skipping: {} not found", p.display());
        return None;
    }
    let prov = Provenance::default();
    let mut out = Vec::new();
    read_osm(&p, &mut |item| {
        match item {
            OsmItem::Entity(e) => out.push(e),
            OsmItem::Link(l) => {
                out.push(l.to_entity(chrono::Utc::now(), &prov).expect("link entity"))
            }
            OsmItem::Node(..) => {}
        }
        Ok(())
    })
    .expect("read Helsinki");
    Some(out)
}
