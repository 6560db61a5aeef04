//! `urbantwin bench consultation`: a consultation under load, over real HTTP on loopback. Participants (1,000 by
//! default, each signed in with an API key) read the consultation's page as the web app does (the consultation, a
//! page of comment threads and the proposals, fetched together) with a human pause between pages, while comments
//! arrive at a fixed rate (100/s by default) from those same participants, as new threads and as replies. It prints
//! the latency of reads and writes (p50, p95, p99, max) and the errors, against the goal: no error, p99 ≤ 200 ms.
//!
//! Writes are scheduled open loop: each comment has an intended send time, and its latency is measured from that
//! time, so a server that falls behind is charged for the queue it builds (no coordinated omission).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use chrono::Utc;
use serde_json::{json, Value};

use super::{percentile, progress, start_server, BenchArgs};

/// The goal of the issue: p99 at most this, in milliseconds.
const P99_GOAL_MS: f64 = 200.0;
/// Comments written before the measurement, so that pages hold threads.
const PRELOAD_COMMENTS: usize = 500;
/// Proposals written before the measurement.
const PRELOAD_PROPOSALS: usize = 30;
const STANCES: [&str; 3] = ["for", "neutral", "against"];

#[derive(Default)]
struct Samples {
    ms: Mutex<Vec<f64>>,
    errors: AtomicU64,
    error_samples: Mutex<Vec<String>>,
}

impl Samples {
    fn ok(&self, ms: f64) {
        self.ms.lock().unwrap_or_else(|e| e.into_inner()).push(ms);
    }
    fn err(&self, e: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut s = self.error_samples.lock().unwrap_or_else(|e| e.into_inner());
        if s.len() < 10 {
            s.push(e);
        }
    }
    fn summary(&self) -> (usize, f64, f64, f64, f64, u64) {
        let mut v = self.ms.lock().unwrap_or_else(|e| e.into_inner()).clone();
        v.sort_by(|a, b| a.total_cmp(b));
        let p = |q| percentile(&v, q).unwrap_or(f64::NAN);
        (
            v.len(),
            p(50.0),
            p(95.0),
            p(99.0),
            v.last().copied().unwrap_or(f64::NAN),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

/// Makes `n` citizen accounts with an API key each (straight in the store, as `urbantwin accounts` does) and a
/// planner; returns the citizens' keys and the planner's.
async fn accounts(store: &dyn twin_store::Store, n: usize) -> Result<(Vec<String>, String)> {
    let err = |e: twin_model::NgsiError| anyhow!("{e}");
    let mut keys = Vec::with_capacity(n);
    let make = |id: String, role: &str| {
        let now = Utc::now();
        let a = twin_store::trust::Account {
            id: id.clone(),
            display_name: Some(format!("Participant {id}")),
            email: None,
            password_hash: None,
            roles: vec![role.to_string()],
            groups: vec![],
            organisation: None,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        let k = twin_auth::apikey::generate();
        let rec = twin_store::trust::ApiKeyRecord {
            id: k.id.clone(),
            account_id: id,
            name: "bench".into(),
            hash: k.hash.clone(),
            scopes: vec!["read".into(), "write".into()],
            created_at: now,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
        };
        (a, rec, k.secret)
    };
    for i in 0..n {
        let (a, k, secret) = make(format!("p{i:05}"), "citizen");
        store.put_account(a, true).await.map_err(err)?;
        store.put_api_key(k).await.map_err(err)?;
        keys.push(secret);
    }
    let (a, k, planner) = make("bench-planner".into(), "planner");
    store.put_account(a, true).await.map_err(err)?;
    store.put_api_key(k).await.map_err(err)?;
    Ok((keys, planner))
}

/// An error with its causes ("error sending request: connection reset ..."): reqwest's own message names none.
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

pub async fn run(a: &BenchArgs) -> Result<()> {
    if a.url.is_some() {
        bail!("bench consultation starts its own server (it makes the participants' accounts in its store): leave out --url");
    }
    let participants = a.participants.max(1);
    let rate = a.comment_rate.max(0.1);
    let duration = Duration::from_secs(a.duration_secs.max(1));
    let think = Duration::from_millis(a.think_ms.max(1));
    let (server, url) = start_server(a.db.clone()).await?;
    progress(format!(
        "server started on {url}, store {}",
        server.db.display()
    ));
    let store = server.state.store.clone();
    progress(format!(
        "{participants} participants and a planner: accounts and API keys"
    ));
    let (keys, planner) = accounts(store.as_ref(), participants).await?;
    let keys = Arc::new(keys);
    // the scenario under consultation, written as a planner's tool would (the bench has no city to check it on)
    let now = Utc::now();
    store
        .put_scenario(
            twin_store::StoredScenario {
                id: "urn:ngsi-ld:Scenario:bench".into(),
                document: json!({"name": "Bench street closed", "edits": []}),
                owner: Some("bench-planner".into()),
                created_at: now,
                modified_at: now,
            },
            true,
        )
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(participants + 200)
        .timeout(Duration::from_secs(60))
        .build()?;
    let api = format!("{url}/api");
    let post = |key: &str, path: String, body: Value| {
        http.post(format!("{api}{path}"))
            .bearer_auth(key)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
    };
    let day = chrono::Duration::days(1);
    let c = json!({
        "id": "bench", "title": {"en": "A consultation under load"}, "scenarios": ["urn:ngsi-ld:Scenario:bench"],
        "phases": [{"phase": "feedback", "start": now - day, "end": now + day * 30}],
        "published": true
    });
    let r = post(&planner, "/consultations".into(), c).await?;
    if r.status() != 201 {
        bail!(
            "the consultation could not be made: {} {}",
            r.status(),
            r.text().await?
        );
    }
    progress(format!(
        "{PRELOAD_COMMENTS} comments and {PRELOAD_PROPOSALS} proposals before the measurement"
    ));
    let mut roots: Vec<String> = Vec::new();
    for i in 0..PRELOAD_COMMENTS {
        let key = &keys[i % keys.len()];
        let mut body = json!({"body": format!("Preloaded comment {i}: the street would be calmer."), "stance": STANCES[i % 3]});
        if i % 3 == 2 && !roots.is_empty() {
            body["parent"] = json!(roots[(i * 7) % roots.len()]);
        }
        let r = post(key, "/consultations/bench/comments".into(), body).await?;
        if r.status() != 201 {
            bail!("preload: {} {}", r.status(), r.text().await?);
        }
        let v: Value = r.json().await?;
        if v["depth"] == 1 {
            roots.push(v["id"].as_str().unwrap_or_default().to_string());
        }
    }
    for i in 0..PRELOAD_PROPOSALS {
        let key = &keys[(i * 13) % keys.len()];
        let body = json!({"title": format!("Proposal {i}"), "body": format!("Plant trees at spot {i}"),
                          "location": [24.94 + i as f64 * 1e-4, 60.17]});
        let r = post(key, "/consultations/bench/proposals".into(), body).await?;
        if r.status() != 201 {
            bail!("preload: {} {}", r.status(), r.text().await?);
        }
    }
    let roots = Arc::new(Mutex::new(roots));

    progress(format!(
        "{participants} participants read the page (a pause of about {} ms between pages) while {rate} comments/s \
         arrive, for {} s",
        think.as_millis(),
        duration.as_secs()
    ));
    let reads = Arc::new(Samples::default());
    let writes = Arc::new(Samples::default());
    let pages = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = Vec::new();
    for i in 0..participants {
        let (http, api, keys, reads, pages) = (
            http.clone(),
            api.clone(),
            keys.clone(),
            reads.clone(),
            pages.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let key = keys[i].clone();
            // participants arrive spread over the first pause
            tokio::time::sleep(think.mul_f64(fastrand::f64())).await;
            while Instant::now() < end {
                let get = |path: &'static str| {
                    let (http, api, key, reads) =
                        (http.clone(), api.clone(), key.clone(), reads.clone());
                    async move {
                        let t = Instant::now();
                        match http
                            .get(format!("{api}{path}"))
                            .bearer_auth(&key)
                            .send()
                            .await
                        {
                            Ok(r) if r.status().is_success() => match r.bytes().await {
                                Ok(_) => reads.ok(t.elapsed().as_secs_f64() * 1000.0),
                                Err(e) => reads.err(format!("{path}: {}", causes(&e))),
                            },
                            Ok(r) => reads.err(format!("{path}: {}", r.status())),
                            Err(e) => reads.err(format!("{path}: {}", causes(&e))),
                        }
                    }
                };
                tokio::join!(
                    get("/consultations/bench"),
                    get("/consultations/bench/comments?limit=20"),
                    get("/consultations/bench/proposals?sort=supports&limit=20"),
                );
                pages.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(think.mul_f64(0.5 + fastrand::f64())).await;
            }
        }));
    }
    // the writers: one comment every 1/rate seconds, each from the next participant
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut n = 0u64;
    let mut writers = Vec::new();
    loop {
        let intended = start + interval.mul_f64(n as f64);
        if intended >= end {
            break;
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(intended)).await;
        let (http, api, keys, writes, roots) = (
            http.clone(),
            api.clone(),
            keys.clone(),
            writes.clone(),
            roots.clone(),
        );
        let i = n as usize;
        writers.push(tokio::spawn(async move {
            let key = &keys[(i * 7919) % keys.len()];
            let mut body = json!({"body": format!("Comment {i} written under load: I think it is a good idea."),
                                  "stance": STANCES[i % 3]});
            if i % 3 == 1 {
                let r = roots.lock().unwrap_or_else(|e| e.into_inner());
                if !r.is_empty() {
                    body["parent"] = json!(r[r.len() - 1 - (i % r.len().min(50))]);
                }
            }
            let r = http
                .post(format!("{api}/consultations/bench/comments"))
                .bearer_auth(key)
                .header("Content-Type", "application/json")
                .body(body.to_string())
                .send()
                .await;
            match r {
                Ok(r) if r.status() == 201 => {
                    let ms = intended.elapsed().as_secs_f64() * 1000.0;
                    match r.json::<Value>().await {
                        Ok(v) => {
                            writes.ok(ms);
                            if v["depth"] == 1 {
                                if let Some(id) = v["id"].as_str() {
                                    roots.lock().unwrap_or_else(|e| e.into_inner()).push(id.to_string());
                                }
                            }
                        }
                        Err(e) => writes.err(causes(&e)),
                    }
                }
                Ok(r) => {
                    let s = r.status();
                    writes.err(format!("{s}: {}", r.text().await.unwrap_or_default()))
                }
                Err(e) => writes.err(causes(&e)),
            }
        }));
        n += 1;
    }
    for w in writers {
        w.await.context("a writer failed")?;
    }
    for t in tasks {
        t.await.context("a reader failed")?;
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = server.stop.send(());
    let _ = server.handle.await;

    // requests are started within the window only (those under way at its end finish after it)
    let window = duration.as_secs_f64();
    let (rn, r50, r95, r99, rmax, rerr) = reads.summary();
    let (wn, w50, w95, w99, wmax, werr) = writes.summary();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let met = rerr == 0 && werr == 0 && r99 <= P99_GOAL_MS && w99 <= P99_GOAL_MS;
    if a.json {
        println!(
            "{}",
            json!({
                "benchmark": "consultation", "participants": participants, "commentRate": rate,
                "thinkMs": think.as_millis() as u64, "seconds": secs, "cores": cores, "pages": pages.load(Ordering::Relaxed),
                "window": window,
                "reads": {"count": rn, "perSecond": rn as f64 / window, "p50": r50, "p95": r95, "p99": r99, "max": rmax, "errors": rerr},
                "writes": {"count": wn, "perSecond": wn as f64 / window, "p50": w50, "p95": w95, "p99": w99, "max": wmax, "errors": werr},
                "goal": {"p99Ms": P99_GOAL_MS, "met": met},
            })
        );
    } else {
        println!(
            "urbantwin bench consultation: {participants} participants reading (pause ~{} ms), {rate} comments/s, \
             {window:.0} s (requests started in it; {secs:.0} s until the last answer), {cores} cores, SQLite",
            think.as_millis(),
        );
        println!(
            "{:<28} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
            "", "requests", "per s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"
        );
        for (name, n, p50, p95, p99, max, e) in [
            ("reads (page: 3 requests)", rn, r50, r95, r99, rmax, rerr),
            ("comments written", wn, w50, w95, w99, wmax, werr),
        ] {
            println!(
                "{name:<28} {n:>9} {:>8.0} {p50:>8.1} {p95:>8.1} {p99:>8.1} {max:>8.1} {e:>7}",
                n as f64 / window
            );
        }
        println!(
            "pages read: {}; goal (no error, p99 ≤ {P99_GOAL_MS} ms for reads and writes): {}",
            pages.load(Ordering::Relaxed),
            if met { "met" } else { "NOT met" }
        );
    }
    for (what, s) in [("read", &reads), ("write", &writes)] {
        for e in s
            .error_samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            eprintln!("[bench] {what} error: {e}");
        }
    }
    Ok(())
}
