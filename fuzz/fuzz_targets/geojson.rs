//! GeoJSON / GeoJSONSeq bytes into the GeoJSON reader, every entity drained.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twin_import::geojson::{parse_geojson, GeoJsonOptions};

fuzz_target!(|data: &[u8]| {
    let options = GeoJsonOptions {
        entity_type: "Thing".into(),
        ..GeoJsonOptions::default()
    };
    let _ = parse_geojson(data, "fuzz.geojson", &options, &mut |_| Ok(()));
});
