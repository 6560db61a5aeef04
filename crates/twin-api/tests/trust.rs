//! Trust over real HTTP: the authorization matrix (every role × dataset policy × way out, allowed or denied, and
//! no way out leaking a dataset's entities, counts, types or attribute names), attribute rules, the usage log, the
//! audit log, API-key revocation, sessions with CSRF, and bad credentials.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// One dataset per read policy, each with its own entity type and attribute names, so that a leak shows by name.
const POLICIES: [&str; 4] = ["pub", "reg", "grp", "prv"];

fn read_access(tag: &str) -> Value {
    match tag {
        "pub" => json!({"kind": "public"}),
        "reg" => json!({"kind": "registered"}),
        "grp" => json!({"kind": "groups", "groups": ["energy"]}),
        _ => json!({"kind": "private"}),
    }
}

fn dataset(tag: &str) -> String {
    format!("urn:ngsi-ld:Dataset:{tag}")
}

/// The entity type of a dataset's entities (`PubThing`...), and its attribute (`pubSecret`...).
fn thing(tag: &str) -> (String, String) {
    let mut c = tag.chars();
    let cap: String = c.next().unwrap().to_uppercase().chain(c).collect();
    (format!("{cap}Thing"), format!("{tag}Secret"))
}

/// Who may read which dataset: role → tags.
fn expected(who: &str) -> Vec<&'static str> {
    match who {
        "anonymous" => vec!["pub"],
        "citizen" => vec!["pub", "reg"],
        "analyst" => vec!["pub", "reg", "grp"],
        // owns every dataset
        "owner" => vec!["pub", "reg", "grp", "prv"],
        "admin" => vec!["pub", "reg", "grp", "prv"],
        other => panic!("{other}"),
    }
}

struct Caller {
    who: &'static str,
    auth: Option<String>,
}

async fn call(
    s: &Server,
    c: &Caller,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> (u16, String) {
    request(s, c.auth.as_deref(), None, method, url, body).await
}

/// A request with an `Authorization` header and in a tenant, when given: its status and body.
async fn request(
    s: &Server,
    authorization: Option<&str>,
    tenant: Option<&str>,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut r = s.http.request(method, url);
    if let Some(a) = authorization {
        r = r.header("Authorization", a);
    }
    if let Some(t) = tenant {
        r = r.header("NGSILD-Tenant", t);
    }
    if let Some(b) = body {
        r = r
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let st = resp.status().as_u16();
    (st, resp.text().await.unwrap())
}

async fn setup(s: &Server) -> Vec<Caller> {
    let admin = s.admin_key().await;
    let owner = s
        .account_key("owner", &["data_owner"], &[], &["admin"])
        .await;
    let analyst = s
        .account_key("analyst", &["planner"], &["energy"], &["read", "write"])
        .await;
    let citizen = s
        .account_key("citizen", &["citizen"], &[], &["read", "write"])
        .await;
    let bearer = |k: &str| Some(format!("Bearer {k}"));
    let admin_caller = Caller {
        who: "admin",
        auth: bearer(&admin),
    };
    let owner_caller = Caller {
        who: "owner",
        auth: bearer(&owner),
    };
    let root = s.root();
    for tag in POLICIES {
        let d = json!({"id": dataset(tag), "title": format!("{tag} data"), "owner": "owner", "licence": "CC-BY-4.0",
                       "read": read_access(tag), "write": {"kind": "private"}});
        let (st, b) = call(
            s,
            &owner_caller,
            Method::POST,
            &format!("{root}/api/datasets"),
            Some(d),
        )
        .await;
        assert_eq!(st, 201, "{b}");
        let (ty, attr) = thing(tag);
        for i in 0..3 {
            let e = json!({"id": format!("urn:ngsi-ld:{ty}:{i}"), "type": ty,
                           attr.clone(): {"type": "Property", "value": i + 1, "observedAt": "2026-11-26T10:00:00Z"},
                           "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [24.94 + i as f64 * 0.001, 60.17]}}});
            let r = s
                .http
                .post(s.url("/entities"))
                .header("Content-Type", "application/json")
                .header("Authorization", owner_caller.auth.clone().unwrap())
                .header("X-Urbantwin-Dataset", dataset(tag))
                .body(e.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        }
    }
    vec![
        Caller {
            who: "anonymous",
            auth: None,
        },
        Caller {
            who: "citizen",
            auth: bearer(&citizen),
        },
        Caller {
            who: "analyst",
            auth: bearer(&analyst),
        },
        owner_caller,
        admin_caller,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_sees_exactly_what_its_policies_allow_through_every_way_out() {
    let s = Server::start().await;
    let callers = setup(&s).await;
    let root = s.root();
    let base = &s.base;
    for c in &callers {
        let allowed = expected(c.who);
        // the listings: types, attributes, OGC collections, the catalogue, the datasets
        let listings = [
            format!("{base}/types"),
            format!("{base}/attributes"),
            format!("{base}/types?details=true"),
            format!("{root}/ogc/collections"),
            format!("{root}/ogc/api"),
            format!("{root}/catalog"),
            format!("{root}/api/datasets"),
            format!("{base}/entities?type=PubThing,RegThing,GrpThing,PrvThing&count=true&limit=100"),
            format!("{base}/temporal/entities?type=PubThing,RegThing,GrpThing,PrvThing&timerel=after&timeAt=2026-01-01T00:00:00Z"),
            format!("{base}/entities?q=pubSecret>0|regSecret>0|grpSecret>0|prvSecret>0&limit=100"),
            format!("{base}/entities?georel=near;maxDistance==5000&geometry=Point&coordinates=[24.94,60.17]&limit=100"),
            format!("{base}/entities?type=PubThing,RegThing,GrpThing,PrvThing&options=keyValues&limit=100"),
            format!("{base}/entities?type=PubThing,RegThing,GrpThing,PrvThing&limit=100&options=sysAttrs"),
        ];
        for url in &listings {
            let (st, body) = call(&s, c, Method::GET, url, None).await;
            assert_eq!(st, 200, "{} GET {url}: {body}", c.who);
            for tag in POLICIES {
                let (ty, attr) = thing(tag);
                let sees = allowed.contains(&tag);
                // a listing of names mentions the type or the attribute; an entity listing, the entity ids
                let shown = body.contains(&ty) || body.contains(&attr);
                if url.contains("/attributes") {
                    assert_eq!(
                        body.contains(&attr),
                        sees,
                        "{} GET {url}: {tag} {body}",
                        c.who
                    );
                } else if url.contains("/api/datasets") || url.contains("/catalog") {
                    assert_eq!(
                        body.contains(&dataset(tag)) || body.contains(&format!("{tag} data")),
                        sees,
                        "{} GET {url}: {tag}",
                        c.who
                    );
                } else {
                    assert_eq!(shown, sees, "{} GET {url}: {tag} {body}", c.who);
                }
            }
        }
        // counts: the number of entities matched is the number visible
        let r = s.http.get(format!(
            "{base}/entities?type=PubThing,RegThing,GrpThing,PrvThing&count=true&limit=0"
        ));
        let r = match &c.auth {
            Some(a) => r.header("Authorization", a),
            None => r,
        };
        let r = r.send().await.unwrap();
        assert_eq!(
            r.headers()["NGSILD-Results-Count"].to_str().unwrap(),
            (allowed.len() * 3).to_string(),
            "{} count",
            c.who
        );
        // one entity of each dataset: retrieve, temporal retrieve, OGC item, OGC items of its collection
        for tag in POLICIES {
            let (ty, _) = thing(tag);
            let id = format!("urn:ngsi-ld:{ty}:1");
            let sees = allowed.contains(&tag);
            let want = if sees { 200 } else { 404 };
            for url in [
                format!("{base}/entities/{id}"),
                format!("{base}/temporal/entities/{id}"),
                format!("{root}/ogc/collections/{ty}/items/{id}"),
                format!("{root}/ogc/collections/{ty}/items"),
                format!("{root}/api/datasets/{}", dataset(tag)),
            ] {
                let (st, body) = call(&s, c, Method::GET, &url, None).await;
                assert_eq!(st, want, "{} GET {url}: {body}", c.who);
            }
            // writes: only the owner and administrators write these datasets (write: private)
            let may_write = matches!(c.who, "owner" | "admin");
            let (st, body) = call(
                &s,
                c,
                Method::POST,
                &format!("{base}/entities/{id}/attrs"),
                Some(json!({"note": {"type": "Property", "value": c.who}})),
            )
            .await;
            let want = match (may_write, sees, c.auth.is_some()) {
                (true, _, _) => 204,
                (false, false, _) => 404,
                (false, true, false) => 401,
                (false, true, true) => 403,
            };
            assert_eq!(st, want, "{} POST {id}/attrs: {body}", c.who);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_carry_only_public_data() {
    let s = Server::start().await;
    setup(&s).await;
    let root = s.root();
    let (st, body) = call(
        &s,
        &Caller {
            who: "admin",
            auth: Some(format!("Bearer {}", s.admin_key().await)),
        },
        Method::GET,
        &format!("{root}/tiles"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("PubThing"), "{body}");
    for hidden in ["RegThing", "GrpThing", "PrvThing", "regSecret", "prvSecret"] {
        assert!(
            !body.contains(hidden),
            "{hidden} in the tile catalogue: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maps_credit_line_names_only_public_datasets() {
    let s = Server::start().await;
    let admin = Caller {
        who: "admin",
        auth: Some(format!("Bearer {}", s.admin_key().await)),
    };
    for (id, owner, read) in [
        ("open", "Open Data Office", "public"),
        ("closed", "Secret Utility", "private"),
    ] {
        let d = json!({"id": dataset(id), "title": id, "owner": owner, "licence": "CC-BY-4.0",
                       "read": {"kind": read}, "write": {"kind": "private"}});
        let (st, body) = call(
            &s,
            &admin,
            Method::POST,
            &format!("{}/api/datasets", s.root()),
            Some(d),
        )
        .await;
        assert_eq!(st, 201, "{body}");
        let b = json!({"id": format!("urn:ngsi-ld:Building:{id}"), "type": "Building",
                       "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [24.94, 60.17]}}});
        let r = s
            .http
            .post(s.url("/entities"))
            .header("Authorization", admin.auth.clone().unwrap())
            .header("X-Urbantwin-Dataset", dataset(id))
            .header("Content-Type", "application/json")
            .body(b.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    for path in ["/tiles/style.json", "/ogc"] {
        let (st, body) = call(
            &s,
            &admin,
            Method::GET,
            &format!("{}{path}", s.root()),
            None,
        )
        .await;
        assert_eq!(st, 200, "{path}: {body}");
        assert!(body.contains("Open Data Office"), "{path}: {body}");
        assert!(!body.contains("Secret Utility"), "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_attribute_is_left_out_and_cannot_be_probed() {
    let s = Server::start().await;
    let callers = setup(&s).await;
    let owner = callers.iter().find(|c| c.who == "owner").unwrap();
    let citizen = callers.iter().find(|c| c.who == "citizen").unwrap();
    let root = s.root();
    // the registered dataset hides its exact location and its secret from all but the owner
    let d = json!({"id": dataset("reg"), "title": "reg data", "owner": "owner", "licence": "CC-BY-4.0",
                   "read": {"kind": "registered"}, "write": {"kind": "private"},
                   "attributes": [{"attribute": "location", "read": {"kind": "private"}},
                                  {"attribute": "regSecret", "read": {"kind": "private"}, "aggregate": {"kind": "registered"}}]});
    let (st, b) = call(
        &s,
        owner,
        Method::PUT,
        &format!("{root}/api/datasets/{}", dataset("reg")),
        Some(d),
    )
    .await;
    assert_eq!(st, 204, "{b}");
    let (st, body) = call(
        &s,
        citizen,
        Method::GET,
        &format!("{}/entities/urn:ngsi-ld:RegThing:1", s.base),
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert!(
        !body.contains("regSecret") && !body.contains("location"),
        "{body}"
    );
    let (_, body) = call(
        &s,
        owner,
        Method::GET,
        &format!("{}/entities/urn:ngsi-ld:RegThing:1", s.base),
        None,
    )
    .await;
    assert!(
        body.contains("regSecret") && body.contains("location"),
        "{body}"
    );
    // a filter on a hidden attribute matches none of that dataset's entities (no probing by query)
    let (_, body) = call(
        &s,
        citizen,
        Method::GET,
        &format!("{}/entities?q=regSecret==2", s.base),
        None,
    )
    .await;
    assert_eq!(body, "[]");
    let (_, body) = call(
        &s,
        citizen,
        Method::GET,
        &format!("{}/entities?type=RegThing&georel=near;maxDistance==5000&geometry=Point&coordinates=[24.94,60.17]", s.base),
        None,
    )
    .await;
    assert_eq!(body, "[]");
    // the attribute listing does not name it for the citizen
    let (_, body) = call(
        &s,
        citizen,
        Method::GET,
        &format!("{}/attributes", s.base),
        None,
    )
    .await;
    assert!(!body.contains("regSecret"), "{body}");
    // its aggregates are open to registered accounts though
    let (st, body) = call(
        &s,
        citizen,
        Method::GET,
        &format!(
            "{}/temporal/entities?type=RegThing&timerel=after&timeAt=2026-01-01T00:00:00Z&aggrMethods=sum&aggrPeriodDuration=P1D",
            s.base
        ),
        None,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("regSecret"), "{body}");
    let (_, body) = call(
        &s,
        citizen,
        Method::GET,
        &format!(
            "{}/temporal/entities?type=RegThing&timerel=after&timeAt=2026-01-01T00:00:00Z",
            s.base
        ),
        None,
    )
    .await;
    assert!(!body.contains("regSecret"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_restricted_data_are_in_the_owners_usage_log() {
    let s = Server::start().await;
    let callers = setup(&s).await;
    let owner = callers.iter().find(|c| c.who == "owner").unwrap();
    let analyst = callers.iter().find(|c| c.who == "analyst").unwrap();
    let citizen = callers.iter().find(|c| c.who == "citizen").unwrap();
    let root = s.root();
    let mut r = s
        .http
        .get(s.url("/entities?type=GrpThing,PubThing&limit=100"))
        .header("Authorization", analyst.auth.clone().unwrap())
        .header("X-Urbantwin-Purpose", "heat planning");
    r = r.header("Accept", "application/json");
    assert_eq!(r.send().await.unwrap().status(), 200);
    let (st, _) = call(
        &s,
        analyst,
        Method::GET,
        &s.url("/entities/urn:ngsi-ld:GrpThing:2"),
        None,
    )
    .await;
    assert_eq!(st, 200);
    let log_url = format!("{root}/api/datasets/{}/usage", dataset("grp"));
    let (st, body) = call(&s, owner, Method::GET, &log_url, None).await;
    assert_eq!(st, 200, "{body}");
    let log: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(log["total"], 2, "{log}");
    let records = log["records"].as_array().unwrap();
    // newest first: the retrieve of one entity, then the query that returned three
    assert_eq!(records[0]["operation"], "ngsi-ld.retrieve");
    assert_eq!(records[0]["entities"], 1);
    assert_eq!(records[1]["operation"], "ngsi-ld.query");
    assert_eq!(records[1]["entities"], 3);
    assert_eq!(records[1]["purpose"], "heat planning");
    assert!(records[1]["principal"]
        .as_str()
        .unwrap()
        .starts_with("analyst"));
    // public data is not logged; the owner's own reads are not either
    let (_, body) = call(
        &s,
        owner,
        Method::GET,
        &format!("{root}/api/datasets/{}/usage", dataset("pub")),
        None,
    )
    .await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["total"], 0);
    let (_, summary) = call(&s, owner, Method::GET, &format!("{log_url}/summary"), None).await;
    let summary: Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary.as_array().unwrap().len(), 2, "{summary}");
    // only the owner and administrators see the log; others are told it does not exist
    let (st, _) = call(&s, citizen, Method::GET, &log_url, None).await;
    assert_eq!(st, 404);
    let (st, _) = call(&s, analyst, Method::GET, &log_url, None).await;
    assert_eq!(st, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_stops_at_once_and_the_audit_log_holds_together() {
    let s = Server::start().await;
    let admin = Caller {
        who: "admin",
        auth: Some(format!("Bearer {}", s.admin_key().await)),
    };
    let root = s.root();
    // an account signs up, signs in, makes a key
    let creds = json!({"id": "mia", "password": "a long enough passphrase"});
    let (st, body) = call(
        &s,
        &Caller {
            who: "anonymous",
            auth: None,
        },
        Method::POST,
        &format!("{root}/api/auth/register"),
        Some(creds.clone()),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let login = s
        .http
        .post(format!("{root}/api/auth/login"))
        .header("Content-Type", "application/json")
        .body(creds.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("HttpOnly"));
    let csrf = login.json::<Value>().await.unwrap()["csrfToken"]
        .as_str()
        .unwrap()
        .to_string();
    let make_key = |csrf: Option<&str>| {
        let mut r = s
            .http
            .post(format!("{root}/api/keys"))
            .header("Content-Type", "application/json")
            .header("Cookie", &cookie)
            .body(json!({"name": "laptop", "scopes": ["read"]}).to_string());
        if let Some(t) = csrf {
            r = r.header("X-CSRF-Token", t);
        }
        r.send()
    };
    // a cookie write without the CSRF token is refused
    assert_eq!(make_key(None).await.unwrap().status(), 403);
    let k = make_key(Some(&csrf)).await.unwrap();
    assert_eq!(k.status(), 201);
    let k: Value = k.json().await.unwrap();
    let key = k["key"].as_str().unwrap().to_string();
    let me = |key: String| {
        s.http
            .get(format!("{root}/api/auth/me"))
            .header("Authorization", format!("Bearer {key}"))
            .send()
    };
    let r = me(key.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["principal"]["subject"],
        "mia"
    );
    // a session ended elsewhere (here: its record removed, as a sign-out on another tab does) leaves a stale
    // cookie: requests with it go on anonymously and the answer drops the cookie, so the browser is not locked out
    let session_token = cookie.split_once('=').unwrap().1.to_string();
    s.store
        .delete_session(&twin_auth::session::hash(&session_token))
        .await
        .unwrap();
    let r = s
        .http
        .get(format!("{root}/api/auth/me"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert!(r.json::<Value>().await.unwrap()["principal"]["subject"].is_null());
    // revoked by an administrator: the next request with it is refused
    let (st, _) = call(
        &s,
        &admin,
        Method::DELETE,
        &format!("{root}/api/keys/{}", k["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(st, 204);
    let r = me(key.clone()).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("revoked"));
    // wrong, forged and unconfigured credentials are 401, never anonymous
    for bad in [
        format!("{}x", &key[..key.len() - 1]),
        "utk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".to_string(),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.".to_string(),
    ] {
        let r = me(bad.clone()).await.unwrap();
        assert_eq!(r.status(), 401, "{bad}");
    }
    // the audit log has the sign-up, the key and its revocation, and its chain verifies
    let (st, body) = call(&s, &admin, Method::GET, &format!("{root}/api/audit"), None).await;
    assert_eq!(st, 200);
    let actions: Vec<String> = serde_json::from_str::<Vec<Value>>(&body)
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["account.register", "key.create", "key.revoke"]);
    let (st, body) = call(
        &s,
        &admin,
        Method::GET,
        &format!("{root}/api/audit/verify"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["ok"], true);
    // only administrators read it
    let (st, _) = call(
        &s,
        &Caller {
            who: "anonymous",
            auth: None,
        },
        Method::GET,
        &format!("{root}/api/audit"),
        None,
    )
    .await;
    assert_eq!(st, 401);
    // a weak password is refused with the reason
    let (st, body) = call(
        &s,
        &Caller {
            who: "anonymous",
            auth: None,
        },
        Method::POST,
        &format!("{root}/api/auth/register"),
        Some(json!({"id": "bob", "password": "short"})),
    )
    .await;
    assert_eq!(st, 400);
    assert!(body.contains("12"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_notifies_only_what_its_owner_may_read() {
    let s = Server::start().await;
    let callers = setup(&s).await;
    let citizen = callers.iter().find(|c| c.who == "citizen").unwrap();
    let owner = callers.iter().find(|c| c.who == "owner").unwrap();
    let (url, mut rx) = notification_sink().await;
    let sub = json!({"type": "Subscription", "entities": [{"type": "PubThing"}, {"type": "PrvThing"}],
                     "notification": {"endpoint": {"uri": url, "accept": "application/json"}}});
    let (st, body) = call(
        &s,
        citizen,
        Method::POST,
        &s.url("/subscriptions"),
        Some(sub),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    // the owner changes one entity of each
    for ty in ["PrvThing", "PubThing"] {
        let (st, _) = call(
            &s,
            owner,
            Method::PATCH,
            &s.url(&format!("/entities/urn:ngsi-ld:{ty}:0/attrs")),
            Some(json!({format!("{}Secret", &ty[..3].to_lowercase()): {"type": "Property", "value": 99}})),
        )
        .await;
        assert_eq!(st, 204);
    }
    let n = tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
        .await
        .expect("a notification")
        .unwrap();
    let text = n.to_string();
    assert!(text.contains("PubThing"), "{text}");
    assert!(
        !text.contains("PrvThing") && !text.contains("prvSecret"),
        "{text}"
    );
    // and no later one about the private entity
    if let Ok(Some(more)) = tokio::time::timeout(std::time::Duration::from_secs(2), rx.recv()).await
    {
        assert!(!more.to_string().contains("PrvThing"), "{more}");
    }
    // other accounts do not see the citizen's subscription
    let (_, body) = call(
        &s,
        callers.iter().find(|c| c.who == "analyst").unwrap(),
        Method::GET,
        &s.url("/subscriptions"),
        None,
    )
    .await;
    assert_eq!(body, "[]");
    // a change of the subscription keeps it the citizen's
    let sub_id = {
        let (_, body) = call(&s, citizen, Method::GET, &s.url("/subscriptions"), None).await;
        serde_json::from_str::<Value>(&body).unwrap()[0]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (st, body) = call(
        &s,
        citizen,
        Method::PATCH,
        &s.url(&format!("/subscriptions/{sub_id}")),
        Some(json!({"throttling": 1})),
    )
    .await;
    assert_eq!(st, 204, "{body}");
    let analyst = callers.iter().find(|c| c.who == "analyst").unwrap();
    let (st, _) = call(
        &s,
        analyst,
        Method::GET,
        &s.url(&format!("/subscriptions/{sub_id}")),
        None,
    )
    .await;
    assert_eq!(st, 404);
    // without an account, no subscription (the twin would send requests wherever it is told)
    let anonymous = callers.iter().find(|c| c.who == "anonymous").unwrap();
    let sub = json!({"type": "Subscription", "entities": [{"type": "PubThing"}],
                     "notification": {"endpoint": {"uri": url, "accept": "application/json"}}});
    let (st, body) = call(
        &s,
        anonymous,
        Method::POST,
        &s.url("/subscriptions"),
        Some(sub.clone()),
    )
    .await;
    assert_eq!(st, 401, "{body}");
    // ... unless an administrator opened subscriptions to anonymous callers
    let mut config = twin_api::ApiConfig::default();
    config.auth.anonymous_subscriptions = true;
    let open = Server::start_with(config, None).await;
    let (st, body) = call(
        &open,
        anonymous,
        Method::POST,
        &open.url("/subscriptions"),
        Some(sub),
    )
    .await;
    assert_eq!(st, 201, "{body}");
}

/// A request as `auth` (an API key) in `tenant`: its status and body.
async fn in_tenant(
    s: &Server,
    auth: Option<&str>,
    tenant: Option<&str>,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> (u16, String) {
    let auth = auth.map(|k| format!("Bearer {k}"));
    request(s, auth.as_deref(), tenant, method, url, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ngsi_ld_tenants_are_organisations() {
    let s = Server::start().await;
    let utility = s
        .member_key(
            "meter-reader",
            &["device"],
            &[],
            &["read", "write"],
            Some("utility"),
        )
        .await;
    let planner = s
        .member_key(
            "planner",
            &["planner"],
            &[],
            &["read", "write"],
            Some("city"),
        )
        .await;
    let admin = s.admin_key().await;
    let (u, p, a) = (
        Some(utility.as_str()),
        Some(planner.as_str()),
        Some(admin.as_str()),
    );
    let meter = json!({"id": "urn:ngsi-ld:Meter:1", "type": "Meter",
                       "reading": {"type": "Property", "value": 42, "observedAt": "2026-11-26T10:00:00Z"}});
    // a public entity outside any tenant
    let (st, body) = in_tenant(
        &s,
        None,
        None,
        Method::POST,
        &s.url("/entities"),
        Some(json!({"id": "urn:ngsi-ld:Bench:1", "type": "Bench", "seats": 4})),
    )
    .await;
    assert_eq!(st, 201, "{body}");

    // a tenant that owns nothing does not exist yet: reading it is a 404 NonexistentTenant
    let (st, body) = in_tenant(
        &s,
        u,
        Some("utility"),
        Method::GET,
        &s.url("/entities?type=Meter"),
        None,
    )
    .await;
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("NonexistentTenant"), "{body}");
    // a malformed name is a 400
    let (st, body) = in_tenant(
        &s,
        u,
        Some("a/b"),
        Method::GET,
        &s.url("/entities?type=Meter"),
        None,
    )
    .await;
    assert_eq!(st, 400, "{body}");
    // only its organisation's members (or an administrator) create it, with their first entity
    for (who, want) in [(None, 401), (p, 403), (u, 201)] {
        let (st, body) = in_tenant(
            &s,
            who,
            Some("utility"),
            Method::POST,
            &s.url("/entities"),
            Some(meter.clone()),
        )
        .await;
        assert_eq!(st, want, "{who:?}: {body}");
    }
    // its dataset belongs to the organisation and is private to it
    let d = s
        .store
        .get_dataset("urn:ngsi-ld:Dataset:tenant:utility")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.owner, "utility");
    assert_eq!(d.read, twin_model::dataset::Access::Private);
    let audit = s.store.audit(None, 100).await.unwrap();
    assert!(
        audit.iter().any(|r| r.action == "tenant.create"),
        "{audit:?}"
    );

    // inside the tenant: its data only, through every NGSI-LD read
    for url in [
        s.url("/entities?type=Meter,Bench"),
        s.url("/types"),
        s.url("/attributes"),
        s.url("/temporal/entities?type=Meter,Bench&timerel=after&timeAt=2026-01-01T00:00:00Z"),
    ] {
        let (st, body) = in_tenant(&s, u, Some("utility"), Method::GET, &url, None).await;
        assert_eq!(st, 200, "{url}: {body}");
        assert!(
            body.contains("reading") || body.contains("Meter"),
            "{url}: {body}"
        );
        assert!(
            !body.contains("Bench") && !body.contains("seats"),
            "{url}: {body}"
        );
    }
    let (st, _) = in_tenant(
        &s,
        u,
        Some("utility"),
        Method::GET,
        &s.url("/entities/urn:ngsi-ld:Bench:1"),
        None,
    )
    .await;
    assert_eq!(st, 404);
    // another organisation's member sees the tenant exists but none of its private data
    let (st, body) = in_tenant(
        &s,
        p,
        Some("utility"),
        Method::GET,
        &s.url("/entities?type=Meter"),
        None,
    )
    .await;
    assert_eq!((st, body.as_str()), (200, "[]"));
    let (st, _) = in_tenant(
        &s,
        p,
        Some("utility"),
        Method::GET,
        &s.url("/entities/urn:ngsi-ld:Meter:1"),
        None,
    )
    .await;
    assert_eq!(st, 404);
    // an administrator sees it, in the tenant and outside
    for tenant in [Some("utility"), None] {
        let (st, body) = in_tenant(
            &s,
            a,
            tenant,
            Method::GET,
            &s.url("/entities/urn:ngsi-ld:Meter:1"),
            None,
        )
        .await;
        assert_eq!(st, 200, "{tenant:?}: {body}");
    }
    // a write into a dataset of no tenant, named while in one, is refused
    let (st, body) = in_tenant(
        &s,
        a,
        Some("utility"),
        Method::POST,
        &s.url("/entities"),
        Some(json!({"id": "urn:ngsi-ld:Meter:2", "type": "Meter"})),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let r = s
        .http
        .post(s.url("/entities"))
        .header("Authorization", format!("Bearer {admin}"))
        .header("NGSILD-Tenant", "utility")
        .header("X-Urbantwin-Dataset", twin_model::dataset::DEFAULT_DATASET)
        .header("Content-Type", "application/json")
        .body(json!({"id": "urn:ngsi-ld:Meter:3", "type": "Meter"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // an update of an entity of another tenant, named in this one, does not find it
    let (st, _) = in_tenant(
        &s,
        a,
        Some("utility"),
        Method::PATCH,
        &s.url("/entities/urn:ngsi-ld:Bench:1/attrs"),
        Some(json!({"note": {"type": "Property", "value": 1}})),
    )
    .await;
    assert_eq!(st, 404);

    // subscriptions live in their tenant
    let sub = json!({"id": "urn:ngsi-ld:Subscription:meters", "type": "Subscription", "entities": [{"type": "Meter"}],
                     "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}}});
    let (st, body) = in_tenant(
        &s,
        u,
        Some("utility"),
        Method::POST,
        &s.url("/subscriptions"),
        Some(sub),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let (_, body) = in_tenant(
        &s,
        u,
        Some("utility"),
        Method::GET,
        &s.url("/subscriptions"),
        None,
    )
    .await;
    assert!(body.contains("urn:ngsi-ld:Subscription:meters"), "{body}");
    let (_, body) = in_tenant(&s, u, None, Method::GET, &s.url("/subscriptions"), None).await;
    assert_eq!(body, "[]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_spend_the_addresss_budget() {
    let mut config = twin_api::ApiConfig::default();
    config.hardening.write_rate_limit_per_s = 0.01;
    config.hardening.write_rate_limit_burst = 3;
    let s = Server::start_with(config, None).await;
    let mut got = Vec::new();
    for i in 0..5 {
        let r = s
            .http
            .get(s.url("/entities?type=T"))
            .header(
                "Authorization",
                format!("Bearer utk_nokey{i}_{}", "x".repeat(43)),
            )
            .send()
            .await
            .unwrap();
        got.push(r.status().as_u16());
    }
    assert_eq!(got, [401, 401, 401, 429, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_says_when_a_dataset_changed_and_what_time_it_covers() {
    let s = Server::start().await;
    setup(&s).await;
    let (st, ttl) = call(
        &s,
        &Caller {
            who: "anonymous",
            auth: None,
        },
        Method::GET,
        &format!("{}/catalog?f=ttl", s.root()),
        None,
    )
    .await;
    assert_eq!(st, 200, "{ttl}");
    // the public dataset's values were observed at 2026-11-26T10:00:00Z and written just now
    assert!(ttl.contains("PeriodOfTime"), "{ttl}");
    assert!(ttl.contains("2026-11-26T10:00:00"), "{ttl}");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(
        ttl.lines()
            .any(|l| l.contains("modified") && l.contains(&today)),
        "{ttl}"
    );
}

/// An HTTP endpoint that hands each notification body it receives to the returned channel.
async fn notification_sink() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    use axum::routing::post;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let app = axum::Router::new().route(
        "/notify",
        post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(serde_json::from_slice(&body).unwrap_or(Value::Null));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", l.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_city_identity_providers_tokens_carry_roles_groups_and_organisation() {
    use jsonwebtoken::{encode, jwk::Jwk, Algorithm, EncodingKey, Header};
    use twin_auth::jwt::{JwtVerifier, OidcConfig};
    const ISS: &str = "https://login.city.example/realms/twin";
    let key = |kid: &str| {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let enc = EncodingKey::from_ec_der(&kp.serialize_der());
        let mut jwk = Jwk::from_encoding_key(&enc, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.into());
        (enc, jwk)
    };
    let (enc, jwk) = key("k1");
    let (other, _) = key("k1");
    let cfg = OidcConfig {
        issuer: ISS.into(),
        audience: "urbantwin".into(),
        jwks_url: None,
        jwks_file: None,
        leeway_s: 5,
        roles_claim: Some("realm_access.roles".into()),
        groups_claim: Some("groups".into()),
        organisation_claim: Some("org".into()),
    };
    let v = JwtVerifier::from_jwks(cfg, &json!({"keys": [jwk]}).to_string()).unwrap();
    let s = Server::start_with_jwt(
        twin_api::ApiConfig::default(),
        None,
        Some(std::sync::Arc::new(v)),
    )
    .await;
    let now = chrono::Utc::now().timestamp();
    let claims = |sub: &str, exp: i64, aud: &str| {
        json!({"iss": ISS, "aud": aud, "sub": sub, "exp": exp, "iat": now,
               "realm_access": {"roles": ["planner"]}, "groups": ["energy"], "org": "utility"})
    };
    let sign = |c: &Value, k: &EncodingKey| {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some("k1".into());
        encode(&h, c, k).unwrap()
    };
    let good = sign(&claims("u-123", now + 600, "urbantwin"), &enc);
    let me = |token: String| {
        let s = &s;
        async move {
            let r = s
                .http
                .get(format!("{}/api/auth/me", s.root()))
                .header("Authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (st, body) = me(good.clone()).await;
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let p = &v["principal"];
    assert_eq!(p["subject"], "u-123", "{body}");
    assert!(
        body.contains("planner") && body.contains("energy"),
        "{body}"
    );
    assert_eq!(p["organisation"], "utility", "{body}");
    // expired (beyond the leeway), for another audience, signed by another key under the same kid, unsigned
    let expired = sign(&claims("u-123", now - 60, "urbantwin"), &enc);
    let elsewhere = sign(&claims("u-123", now + 600, "another-app"), &enc);
    let forged = sign(&claims("u-123", now + 600, "urbantwin"), &other);
    let unsigned = {
        use base64::Engine;
        let b = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b(&json!({"alg": "none", "typ": "JWT"})),
            b(&claims("u-123", now + 600, "urbantwin"))
        )
    };
    for (what, t) in [
        ("expired", expired),
        ("audience", elsewhere),
        ("forged", forged),
        ("none", unsigned),
    ] {
        let (st, body) = me(t).await;
        assert_eq!(st, 401, "{what}: {body}");
    }
    // the token's organisation is a tenant it may create and write; its group opens a group dataset
    let r = s
        .http
        .post(s.url("/entities"))
        .header("Authorization", format!("Bearer {good}"))
        .header("NGSILD-Tenant", "utility")
        .header("Content-Type", "application/json")
        .body(json!({"id": "urn:ngsi-ld:Meter:9", "type": "Meter", "reading": 3}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // and what it writes names it as the source
    let r = s
        .http
        .get(s.url("/entities/urn:ngsi-ld:Meter:9?options=provenance"))
        .header("Authorization", format!("Bearer {good}"))
        .send()
        .await
        .unwrap();
    let e: Value = r.json().await.unwrap();
    assert!(
        e["reading"]["provenance"]["source"]
            .as_str()
            .unwrap_or_default()
            .contains("u-123"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_account_keys_stop_at_once_though_keys_are_cached() {
    let s = Server::start().await;
    let admin = Caller {
        who: "admin",
        auth: Some(format!("Bearer {}", s.admin_key().await)),
    };
    let key = s
        .account_key("sam", &["planner"], &[], &["read", "write"])
        .await;
    let sam = Caller {
        who: "planner",
        auth: Some(format!("Bearer {key}")),
    };
    let me = format!("{}/api/auth/me", s.root());
    // used twice: the second answer comes from the cache
    for _ in 0..2 {
        let (st, body) = call(&s, &sam, Method::GET, &me, None).await;
        assert_eq!(st, 200, "{body}");
    }
    let (st, body) = call(
        &s,
        &admin,
        Method::PATCH,
        &format!("{}/api/accounts/sam", s.root()),
        Some(json!({"disabled": true})),
    )
    .await;
    assert!(st == 200 || st == 204, "{st} {body}");
    let (st, body) = call(&s, &sam, Method::GET, &me, None).await;
    assert_eq!(st, 401, "{body}");
    assert!(body.contains("disabled"), "{body}");
}
