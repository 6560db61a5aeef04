//! What the CLI tests share: running the built `urbantwin` binary.

use std::process::Command;

/// Runs `urbantwin` with `args`: (success, stdout, stderr).
pub fn urbantwin(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_urbantwin"))
        .args(args)
        .output()
        .expect("run urbantwin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A path under the shared reference data (`../shared/data/{rel}`), when present; a failure under CI, else `None`
/// with a printed reason.
#[allow(dead_code)] // not every test binary uses every helper
pub fn shared(rel: &str) -> Option<std::path::PathBuf> {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {} is missing", p.display());
    }
    eprintln!("skipping: {} not found", p.display());
    None
}

/// A fresh store with the Helsinki extract imported by `urbantwin import osm`: the directory (kept alive by the
/// caller) and the store's path.
#[allow(dead_code)]
pub fn helsinki_db() -> Option<(tempfile::TempDir, String)> {
    let pbf = shared("osm/helsinki.osm.pbf")?;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("city.db").to_str().unwrap().to_string();
    let (ok, _, err) = urbantwin(&[
        "import",
        "osm",
        pbf.to_str().unwrap(),
        "--db",
        &db,
        "--json",
    ]);
    assert!(ok, "{err}");
    Some((dir, db))
}
