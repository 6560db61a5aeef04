//! OSM PBF bytes into the OSM reader (format told apart by content, as for a file), every item drained.
#![no_main]

mod decoder_panics;

use libfuzzer_sys::fuzz_target;
use twin_import::osm::{read_osm_bytes, OsmOptions};

fuzz_target!(
    init: decoder_panics::let_the_reader_catch_decoder_panics(),
    |data: &[u8]| {
        let _ = read_osm_bytes(data, "fuzz.osm.pbf", &OsmOptions::default(), &mut |_| Ok(()));
    }
);
