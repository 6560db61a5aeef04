//! CityJSON / CityJSONSeq bytes into the CityJSON reader (a default CRS for files that declare none), every
//! entity drained.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twin_import::cityjson::{parse_cityjson, CityJsonOptions};

fuzz_target!(|data: &[u8]| {
    let options = CityJsonOptions {
        default_crs: Some("EPSG:7415".into()),
        ..CityJsonOptions::default()
    };
    let _ = parse_cityjson(data, "fuzz.city.json", &options, &mut |_| Ok(()));
});
