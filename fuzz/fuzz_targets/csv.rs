//! CSV bytes into the CSV reader (columns found by name; `;`-separated when the first line has more `;` than `,`),
//! every entity drained.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twin_import::csv::{parse_csv, CsvOptions};

fuzz_target!(|data: &[u8]| {
    let first = data.split(|&b| b == b'\n').next().unwrap_or_default();
    let count = |c: u8| first.iter().filter(|&&b| b == c).count();
    let options = CsvOptions {
        entity_type: "Thing".into(),
        delimiter: if count(b';') > count(b',') { ';' } else { ',' },
        ..CsvOptions::default()
    };
    let _ = parse_csv(data, "fuzz.csv", &options, &mut |_| Ok(()));
});
