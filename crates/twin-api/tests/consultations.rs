//! Consultations over real HTTP (SQLite, and PostgreSQL with `URBANTWIN_TEST_STORE=postgres`): every action and
//! role of docs/consultations.md, the forbidden ones included (a citizen cannot edit another's comment, vote twice,
//! support beyond the limit or read a hidden comment's text), on a small grid city whose scenario really runs.

mod common;

use std::time::{Duration, Instant};

use chrono::{Duration as Span, Utc};
use common::grid::*;
use common::*;
use reqwest::{Client, Method};
use serde_json::{json, Value};

/// One consultation's world: a server with the grid city, a planner's scenario that ran, and people.
struct World {
    s: Server,
    admin: Client,
    planner: Client,
    ann: Client,
    bob: Client,
    cy: Client,
    moderator: Client,
    anonymous: Client,
    scenario: String,
}

impl World {
    async fn new() -> World {
        World::with(twin_api::ApiConfig::default()).await
    }

    async fn with(config: twin_api::ApiConfig) -> World {
        let s = Server::start_with(config, None).await;
        let admin = s.admin_client().await;
        let planner = s.client_of("pia", &["planner"]).await;
        let ann = s.client_of("ann", &["citizen"]).await;
        let bob = s.client_of("bob", &["citizen"]).await;
        let cy = s.client_of("cy", &["citizen"]).await;
        let moderator = s.client_of("mo", &["moderator"]).await;
        let (_, _) = json_call(
            &admin,
            Method::POST,
            &s.url("/entityOperations/upsert"),
            Some(&Value::Array(grid_city())),
            201,
        )
        .await;
        let scenario = json!({"name": "Keskuskatu closed", "edits": [{"kind": "closeStreet", "name": "Keskuskatu"}]});
        let (v, _) = json_call(
            &planner,
            Method::POST,
            &format!("{}/api/scenarios", s.root()),
            Some(&scenario),
            201,
        )
        .await;
        let id = v["id"].as_str().unwrap().to_string();
        let w = World {
            s,
            admin,
            planner,
            ann,
            bob,
            cy,
            moderator,
            anonymous: Client::new(),
            scenario: id,
        };
        let run = w.run(&w.planner, &w.scenario).await;
        assert_eq!(run["status"], "done", "{run}");
        w
    }

    fn api(&self, path: &str) -> String {
        format!("{}/api{path}", self.s.root())
    }

    async fn call(
        &self,
        who: &Client,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut r = who.request(method, self.api(path));
        if let Some(b) = body {
            r = r
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let st = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (st, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `method path` as `who`, asserting `status`; the body.
    async fn ok(
        &self,
        who: &Client,
        method: Method,
        path: &str,
        body: Option<&Value>,
        status: u16,
    ) -> Value {
        let (st, v) = self.call(who, method.clone(), path, body).await;
        assert_eq!(st, status, "{method} {path}: {v}");
        v
    }

    /// Runs a scenario to its end as `who`.
    async fn run(&self, who: &Client, scenario: &str) -> Value {
        let path = format!("/scenarios/{}/runs", enc(scenario));
        let v = self
            .ok(who, Method::POST, &path, Some(&json!({"gap": 1e-6})), 202)
            .await;
        let run = format!(
            "/scenarios/{}/runs/{}",
            enc(scenario),
            enc(v["id"].as_str().unwrap())
        );
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let v = self.ok(who, Method::GET, &run, None, 200).await;
            if ["done", "failed", "cancelled"].contains(&v["status"].as_str().unwrap()) {
                return v;
            }
            assert!(Instant::now() < deadline, "run did not finish: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A published consultation on the scenario in `phase` now (the others around it), made by the planner.
    async fn consultation(&self, id: &str, phase: &str, extra: Value) -> Value {
        let now = Utc::now();
        let order = ["information", "feedback", "voting", "results"];
        let at = order.iter().position(|p| *p == phase).unwrap() as i64;
        let phases: Vec<Value> = order
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let start = now + Span::days(10 * (i as i64 - at)) - Span::hours(1);
                json!({"phase": p, "start": start, "end": start + Span::days(10)})
            })
            .collect();
        let mut c = json!({
            "id": id,
            "title": {"en": "A calmer Keskuskatu", "fi": "Rauhallisempi Keskuskatu"},
            "summary": {"en": "Should Keskuskatu close to cars?"},
            "scenarios": [self.scenario],
            "phases": phases,
            "area": [24.89, 60.19, 24.93, 60.22],
            "published": true,
        });
        if let (Some(o), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        self.ok(&self.planner, Method::POST, "/consultations", Some(&c), 201)
            .await
    }

    async fn comment(&self, who: &Client, c: &str, body: Value) -> Value {
        self.ok(
            who,
            Method::POST,
            &format!("/consultations/{c}/comments"),
            Some(&body),
            201,
        )
        .await
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn kind_of(v: &Value) -> &str {
    v["type"]
        .as_str()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planners_make_consultations_that_everyone_reads() {
    let w = World::new().await;
    // who may make one
    let draft = json!({"title": {"en": "Draft"}, "scenarios": [w.scenario],
                       "phases": [{"phase": "feedback", "start": Utc::now(), "end": Utc::now() + Span::days(1)}]});
    let (st, v) = w
        .call(&w.anonymous, Method::POST, "/consultations", Some(&draft))
        .await;
    assert_eq!((st, kind_of(&v)), (401, "Unauthenticated"), "{v}");
    let (st, v) = w
        .call(&w.ann, Method::POST, "/consultations", Some(&draft))
        .await;
    assert_eq!((st, kind_of(&v)), (403, "AccessDenied"), "{v}");
    // an id made from the title; a draft is its planner's alone
    let d = w
        .ok(
            &w.planner,
            Method::POST,
            "/consultations",
            Some(&draft),
            201,
        )
        .await;
    assert_eq!(d["id"], "draft");
    assert_eq!(d["owner"], "pia");
    assert_eq!(d["currentPhase"], "feedback");
    assert_eq!(
        d["allowed"]["comment"], false,
        "a draft takes no comments: {d}"
    );
    w.ok(&w.anonymous, Method::GET, "/consultations/draft", None, 404)
        .await;
    w.ok(&w.ann, Method::GET, "/consultations/draft", None, 404)
        .await;
    let listed = w
        .ok(&w.anonymous, Method::GET, "/consultations", None, 200)
        .await;
    assert!(listed.as_array().unwrap().is_empty(), "{listed}");
    // a second one with the same title takes the next id
    let d2 = w
        .ok(
            &w.planner,
            Method::POST,
            "/consultations",
            Some(&draft),
            201,
        )
        .await;
    assert_eq!(d2["id"], "draft-2");
    // bad ones are refused with the reason
    let mut bad = draft.clone();
    bad["phases"] = json!([{"phase": "voting", "start": Utc::now(), "end": Utc::now() + Span::days(1)},
                           {"phase": "feedback", "start": Utc::now() + Span::days(2), "end": Utc::now() + Span::days(3)}]);
    let (st, v) = w
        .call(&w.planner, Method::POST, "/consultations", Some(&bad))
        .await;
    assert_eq!((st, kind_of(&v)), (400, "BadRequestData"), "{v}");
    let mut bad = draft.clone();
    bad["scenarios"] = json!(["urn:ngsi-ld:Scenario:nowhere"]);
    let (st, v) = w
        .call(&w.planner, Method::POST, "/consultations", Some(&bad))
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("does not exist"),
        "{v}"
    );

    // published: everyone reads it, with its scenario's effect in plain language
    let mut published = d.clone();
    published["published"] = json!(true);
    let other = w.s.client_of("otto", &["planner"]).await;
    let (st, v) = w
        .call(
            &other,
            Method::PUT,
            "/consultations/draft",
            Some(&published),
        )
        .await;
    assert_eq!(
        (st, kind_of(&v)),
        (404, "ResourceNotFound"),
        "another planner does not even see the draft: {v}"
    );
    w.ok(
        &w.planner,
        Method::PUT,
        "/consultations/draft",
        Some(&published),
        200,
    )
    .await;
    let (st, v) = w
        .call(
            &other,
            Method::PUT,
            "/consultations/draft",
            Some(&published),
        )
        .await;
    assert_eq!((st, kind_of(&v)), (403, "AccessDenied"), "{v}");
    let v = w
        .ok(&w.anonymous, Method::GET, "/consultations/draft", None, 200)
        .await;
    assert_eq!(v["allowed"]["comment"], true);
    assert_eq!(v["allowed"]["propose"], true);
    assert_eq!(v["following"], false);
    let summary = &v["scenarioSummaries"][0];
    assert_eq!(summary["id"], w.scenario.as_str());
    assert_eq!(summary["name"], "Keskuskatu closed");
    assert!(summary["run"].is_string(), "{summary}");
    let texts: Vec<&str> = summary["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"]["en"].as_str().unwrap())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Time spent driving in the city")),
        "{texts:?}"
    );
    assert!(summary["indicators"][0]["text"]["fi"].is_string());
    assert_eq!(
        v["counts"],
        json!({"participants": 0, "comments": 0, "proposals": 0, "supports": 0})
    );
    let listed = w
        .ok(&w.anonymous, Method::GET, "/consultations", None, 200)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // deleting: its planner or an administrator
    let (st, _) = w
        .call(&w.ann, Method::DELETE, "/consultations/draft", None)
        .await;
    assert_eq!(st, 403);
    w.ok(&w.admin, Method::DELETE, "/consultations/draft", None, 204)
        .await;
    w.ok(&w.anonymous, Method::GET, "/consultations/draft", None, 404)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_nest_three_deep_and_take_one_vote_per_person() {
    let w = World::new().await;
    let c = w.consultation("calm", "feedback", json!({})).await;
    let c = c["id"].as_str().unwrap().to_string();
    let path = format!("/consultations/{c}/comments");
    // anonymous visitors read but do not write
    let (st, _) = w
        .call(
            &w.anonymous,
            Method::POST,
            &path,
            Some(&json!({"body": "hi", "stance": "for"})),
        )
        .await;
    assert_eq!(st, 401);
    let root = w
        .comment(
            &w.ann,
            &c,
            json!({"body": "Less traffic in front of the school.", "stance": "for",
                                    "scenario": w.scenario, "location": [24.91, 60.206]}),
        )
        .await;
    assert_eq!(root["depth"], 1);
    assert_eq!(root["author"], "ann");
    assert_eq!(root["stance"], "for");
    let root_id = root["id"].as_str().unwrap();
    let r1 = w
        .comment(
            &w.bob,
            &c,
            json!({"body": "The buses will be slower.", "stance": "against", "parent": root_id}),
        )
        .await;
    assert_eq!(r1["depth"], 2);
    assert_eq!(
        r1["scenario"],
        w.scenario.as_str(),
        "a reply is on its thread's scenario"
    );
    let r2 = w
        .comment(
            &w.ann,
            &c,
            json!({"body": "Not with a bus lane.", "stance": "for", "parent": r1["id"]}),
        )
        .await;
    assert_eq!(r2["depth"], 3);
    let (st, v) = w
        .call(
            &w.bob,
            Method::POST,
            &path,
            Some(&json!({"body": "Deeper", "stance": "neutral", "parent": r2["id"]})),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("at most 3 deep"),
        "{v}"
    );
    let other = w
        .comment(
            &w.cy,
            &c,
            json!({"body": "What about deliveries?", "stance": "neutral"}),
        )
        .await;

    // the page: newest thread first, each thread flattened depth first
    let (st, page) = w.call(&w.anonymous, Method::GET, &path, None).await;
    assert_eq!(st, 200);
    let ids: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            other["id"].as_str().unwrap(),
            root_id,
            r1["id"].as_str().unwrap(),
            r2["id"].as_str().unwrap()
        ]
    );
    assert_eq!(page[1]["replies"], 1);
    let scenario_only = w
        .ok(
            &w.anonymous,
            Method::GET,
            &format!("{path}?scenario={}", enc(&w.scenario)),
            None,
            200,
        )
        .await;
    assert_eq!(
        scenario_only.as_array().unwrap().len(),
        3,
        "the general comment is not on the scenario"
    );
    let old_first = w
        .ok(
            &w.anonymous,
            Method::GET,
            &format!("{path}?sort=old&limit=1"),
            None,
            200,
        )
        .await;
    assert_eq!(old_first[0]["id"], root_id);
    assert_eq!(
        old_first.as_array().unwrap().len(),
        3,
        "a page of one thread holds its replies"
    );

    // edits: the author only
    let one = format!("{path}/{root_id}");
    let (st, v) = w
        .call(
            &w.bob,
            Method::PATCH,
            &one,
            Some(&json!({"body": "hijacked"})),
        )
        .await;
    assert_eq!((st, kind_of(&v)), (403, "AccessDenied"), "{v}");
    let e = w
        .ok(
            &w.ann,
            Method::PATCH,
            &one,
            Some(&json!({"body": "Less traffic in front of the school!"})),
            200,
        )
        .await;
    assert!(e["editedAt"].is_string());
    assert_eq!(e["body"], "Less traffic in front of the school!");

    // votes: one per person, changeable, not on one's own
    let vote = format!("{one}/vote");
    let v = w
        .ok(&w.bob, Method::PUT, &vote, Some(&json!({"value": 1})), 200)
        .await;
    assert_eq!(
        (v["votes"]["up"].as_u64(), v["myVote"].as_i64()),
        (Some(1), Some(1))
    );
    let v = w
        .ok(&w.bob, Method::PUT, &vote, Some(&json!({"value": 1})), 200)
        .await;
    assert_eq!(
        v["votes"],
        json!({"up": 1, "down": 0}),
        "a second vote counts once"
    );
    let v = w
        .ok(&w.cy, Method::PUT, &vote, Some(&json!({"value": 1})), 200)
        .await;
    assert_eq!(v["votes"]["up"], 2);
    let v = w
        .ok(&w.bob, Method::PUT, &vote, Some(&json!({"value": -1})), 200)
        .await;
    assert_eq!(v["votes"], json!({"up": 1, "down": 1}));
    let (st, _) = w
        .call(&w.ann, Method::PUT, &vote, Some(&json!({"value": 1})))
        .await;
    assert_eq!(st, 409, "no vote on one's own comment");
    let (st, _) = w
        .call(&w.bob, Method::PUT, &vote, Some(&json!({"value": 5})))
        .await;
    assert_eq!(st, 400);
    let v = w.ok(&w.bob, Method::DELETE, &vote, None, 200).await;
    assert_eq!(v["votes"], json!({"up": 1, "down": 0}));
    let top = w
        .ok(
            &w.anonymous,
            Method::GET,
            &format!("{path}?sort=top&limit=1"),
            None,
            200,
        )
        .await;
    assert_eq!(top[0]["id"], root_id, "the voted thread ranks first");

    // anti-spam: links, duplicates, rate
    let (st, v) = w.call(&w.cy, Method::POST, &path, Some(&json!({"body": "http://a.example http://b.example www.c.example", "stance": "for"}))).await;
    assert_eq!(st, 400, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("links"));
    let (st, v) = w
        .call(
            &w.cy,
            Method::POST,
            &path,
            Some(&json!({"body": "What about deliveries?", "stance": "for"})),
        )
        .await;
    assert_eq!(st, 409, "the same text twice: {v}");
    let mut limited = None;
    for i in 0..12 {
        let r =
            w.cy.post(w.api(&path))
                .header("Content-Type", "application/json")
                .body(json!({"body": format!("Point number {i}"), "stance": "neutral"}).to_string())
                .send()
                .await
                .unwrap();
        if r.status() == 429 {
            limited = r
                .headers()
                .get("retry-after")
                .map(|h| h.to_str().unwrap().to_string());
            break;
        }
        assert_eq!(r.status(), 201);
    }
    assert!(
        limited.is_some_and(|s| s.parse::<u64>().unwrap() >= 1),
        "ten comments a minute at most"
    );

    // ann hears of bob's reply
    let n = w.ok(&w.ann, Method::GET, "/notifications", None, 200).await;
    assert_eq!(n["unread"], 1, "{n}");
    assert_eq!(n["items"][0]["kind"], "reply");
    assert_eq!(n["items"][0]["target"], r1["id"]);
    let n = w.ok(&w.bob, Method::GET, "/notifications", None, 200).await;
    assert_eq!(
        n["unread"], 1,
        "bob hears of ann's answer to his reply: {n}"
    );
    w.ok(
        &w.ann,
        Method::POST,
        "/notifications/read",
        Some(&json!({"all": true})),
        200,
    )
    .await;
    assert_eq!(
        w.ok(&w.ann, Method::GET, "/notifications", None, 200).await["unread"],
        0
    );

    // deleting one's own comment keeps its place in the thread, without its text
    w.ok(
        &w.bob,
        Method::DELETE,
        &format!("{path}/{}", r1["id"].as_str().unwrap()),
        None,
        204,
    )
    .await;
    let (st, _) = w.call(&w.cy, Method::DELETE, &one, None).await;
    assert_eq!(st, 403, "not someone else's");
    // the one who wrote sees it at once; everyone else within a second (pages are shared for that long)
    let oldest = format!("{path}?sort=old&limit=1");
    for (who, wait) in [(&w.bob, false), (&w.anonymous, true)] {
        if wait {
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
        let page = w.ok(who, Method::GET, &oldest, None, 200).await;
        assert_eq!(page[1]["state"], "deleted");
        assert_eq!(page[1]["body"], "");
        assert_eq!(page[2]["depth"], 3, "its replies stay");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_take_supports_within_the_limit_and_planners_answer() {
    let w = World::new().await;
    let c = w
        .consultation("calm", "feedback", json!({"supportsPerPerson": 2}))
        .await;
    let c = c["id"].as_str().unwrap().to_string();
    let path = format!("/consultations/{c}/proposals");
    w.ok(
        &w.cy,
        Method::PUT,
        &format!("/consultations/{c}/follow"),
        None,
        200,
    )
    .await;
    let v = w
        .ok(
            &w.cy,
            Method::GET,
            &format!("/consultations/{c}"),
            None,
            200,
        )
        .await;
    assert_eq!(v["following"], true);
    let (st, v) = w
        .call(
            &w.ann,
            Method::POST,
            &path,
            Some(&json!({"title": "A bench", "body": "By the school"})),
        )
        .await;
    assert_eq!(st, 400, "pinned or drawn: {v}");
    let mut ids = Vec::new();
    for (i, who) in [&w.ann, &w.ann, &w.cy].into_iter().enumerate() {
        let p = w
            .ok(who, Method::POST, &path, Some(&json!({"title": format!("Proposal {i}"), "body": format!("Because {i}"),
                                                          "location": [24.905 + i as f64 * 0.001, 60.205]})), 201)
            .await;
        assert_eq!(p["status"], "submitted");
        ids.push(p["id"].as_str().unwrap().to_string());
    }
    // supports: two per person here
    for id in &ids[..2] {
        let v = w
            .ok(
                &w.bob,
                Method::PUT,
                &format!("{path}/{id}/support"),
                None,
                200,
            )
            .await;
        assert_eq!(
            (v["supports"].as_u64(), v["supported"].as_bool()),
            (Some(1), Some(true))
        );
    }
    let v = w
        .ok(
            &w.bob,
            Method::PUT,
            &format!("{path}/{}/support", ids[0]),
            None,
            200,
        )
        .await;
    assert_eq!(v["supports"], 1, "supporting twice counts once");
    let (st, v) = w
        .call(
            &w.bob,
            Method::PUT,
            &format!("{path}/{}/support", ids[2]),
            None,
        )
        .await;
    assert_eq!(st, 409, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("2 proposals"), "{v}");
    w.ok(
        &w.bob,
        Method::DELETE,
        &format!("{path}/{}/support", ids[1]),
        None,
        200,
    )
    .await;
    w.ok(
        &w.bob,
        Method::PUT,
        &format!("{path}/{}/support", ids[2]),
        None,
        200,
    )
    .await;
    let by = w
        .ok(
            &w.anonymous,
            Method::GET,
            &format!("{path}?sort=supports"),
            None,
            200,
        )
        .await;
    assert_eq!(by.as_array().unwrap().len(), 3);
    assert_eq!(by[0]["supports"], 1);
    assert_eq!(by[2]["supports"], 0);
    assert_eq!(by[2]["id"], ids[1].as_str());

    // editing and withdrawing are the author's
    let one = format!("{path}/{}", ids[0]);
    let (st, _) = w
        .call(
            &w.bob,
            Method::PATCH,
            &one,
            Some(&json!({"title": "Mine now"})),
        )
        .await;
    assert_eq!(st, 403);
    w.ok(
        &w.ann,
        Method::PATCH,
        &one,
        Some(&json!({"title": "A bench by the school"})),
        200,
    )
    .await;

    // a street change: fork the planner's scenario, run it (a citizen's own), propose it
    let (st, v) = w
        .call(
            &w.ann,
            Method::POST,
            &format!("/scenarios/{}/runs", enc(&w.scenario)),
            Some(&json!({})),
        )
        .await;
    assert_eq!(st, 403, "a citizen runs only their own scenarios: {v}");
    let fork = w
        .ok(
            &w.ann,
            Method::POST,
            &format!("/scenarios/{}/fork", enc(&w.scenario)),
            Some(&json!({"name": "Keskuskatu and one side street closed"})),
            201,
        )
        .await;
    assert_eq!(fork["owner"], "ann");
    assert_eq!(fork["forkedFrom"], w.scenario.as_str());
    let fork_id = fork["id"].as_str().unwrap().to_string();
    let mut edited = fork.clone();
    edited["edits"] = json!([{"kind": "closeStreet", "name": "Keskuskatu"},
                             {"kind": "closeLinks", "links": ["urn:ngsi-ld:RoadLink:v-0-0"]}]);
    w.ok(
        &w.ann,
        Method::PUT,
        &format!("/scenarios/{}", enc(&fork_id)),
        Some(&edited),
        204,
    )
    .await;
    let again = w
        .ok(
            &w.ann,
            Method::GET,
            &format!("/scenarios/{}", enc(&fork_id)),
            None,
            200,
        )
        .await;
    assert_eq!(
        again["forkedFrom"],
        w.scenario.as_str(),
        "an edit keeps where it came from"
    );
    let run = w.run(&w.ann, &fork_id).await;
    assert_eq!(run["status"], "done", "{run}");
    assert!(
        run["provenance"]["parameters"]["maxSeconds"]
            .as_f64()
            .unwrap()
            <= 60.0,
        "{run}"
    );
    let (st, _) = w
        .call(
            &w.bob,
            Method::POST,
            &path,
            Some(&json!({"title": "Stolen", "body": "x", "scenario": fork_id})),
        )
        .await;
    assert_eq!(st, 403, "a proposal's scenario is its author's own");
    let drawn = w.ok(&w.ann, Method::POST, &path, Some(&json!({"title": "Close the side street too", "body": "Calmer still", "scenario": fork_id})), 201).await;
    assert_eq!(drawn["geometry"]["type"], "MultiLineString", "{drawn}");
    let lines = drawn["geometry"]["coordinates"].as_array().unwrap();
    assert_eq!(
        lines.len(),
        5 + 1,
        "Keskuskatu's five links and the side street: {drawn}"
    );

    // the planner answers; the author and the followers hear of it
    let answer = format!("{path}/{}/answer", ids[0]);
    let (st, _) = w
        .call(
            &w.ann,
            Method::POST,
            &answer,
            Some(&json!({"status": "accepted", "text": "Yes"})),
        )
        .await;
    assert_eq!(st, 403, "citizens do not answer");
    let a = w
        .ok(
            &w.planner,
            Method::POST,
            &answer,
            Some(&json!({"status": "evaluating", "text": "We are looking at it."})),
            200,
        )
        .await;
    assert_eq!(a["status"], "evaluating");
    assert_eq!(a["answer"]["by"], "pia");
    let m = w
        .ok(
            &w.planner,
            Method::POST,
            &format!("{path}/{}/milestones", ids[0]),
            Some(&json!({"title": "Bench ordered"})),
            201,
        )
        .await;
    assert_eq!(m["milestones"][0]["title"], "Bench ordered");
    let n = w
        .ok(&w.ann, Method::GET, "/notifications?unread=true", None, 200)
        .await;
    let kinds: Vec<&str> = n["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["milestone", "answer"], "{n}");
    let n = w.ok(&w.cy, Method::GET, "/notifications", None, 200).await;
    assert_eq!(n["unread"], 2, "the follower hears too: {n}");
    let n = w.ok(&w.bob, Method::GET, "/notifications", None, 200).await;
    assert_eq!(n["unread"], 0, "bob follows nothing: {n}");
    // a decided proposal is no longer the author's to withdraw; an undecided one is, and its supports go back
    w.ok(
        &w.planner,
        Method::POST,
        &answer,
        Some(&json!({"status": "accepted", "text": "Done soon."})),
        200,
    )
    .await;
    let (st, _) = w.call(&w.ann, Method::DELETE, &one, None).await;
    assert_eq!(st, 409);
    w.ok(
        &w.cy,
        Method::DELETE,
        &format!("{path}/{}", ids[2]),
        None,
        204,
    )
    .await;
    let v = w
        .ok(
            &w.anonymous,
            Method::GET,
            &format!("{path}/{}", ids[2]),
            None,
            200,
        )
        .await;
    assert_eq!(
        (v["status"].as_str(), v["supports"].as_u64()),
        (Some("withdrawn"), Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderators_hide_flagged_contributions_with_a_public_reason() {
    let w = World::new().await;
    w.consultation("calm", "feedback", json!({})).await;
    let path = "/consultations/calm/comments";
    let bad = w
        .comment(
            &w.ann,
            "calm",
            json!({"body": "Rude words about a neighbour", "stance": "against"}),
        )
        .await;
    let bad_id = bad["id"].as_str().unwrap().to_string();
    let target = format!("comment:{bad_id}");
    let flag = json!({"target": target, "reason": "offensive", "note": "names a person"});
    let (st, _) = w
        .call(
            &w.anonymous,
            Method::POST,
            "/consultations/calm/flags",
            Some(&flag),
        )
        .await;
    assert_eq!(st, 401);
    let (st, _) = w
        .call(
            &w.ann,
            Method::POST,
            "/consultations/calm/flags",
            Some(&flag),
        )
        .await;
    assert_eq!(st, 409, "not one's own");
    w.ok(
        &w.bob,
        Method::POST,
        "/consultations/calm/flags",
        Some(&flag),
        201,
    )
    .await;
    let (st, _) = w
        .call(
            &w.bob,
            Method::POST,
            "/consultations/calm/flags",
            Some(&flag),
        )
        .await;
    assert_eq!(st, 409, "once per person");
    w.ok(
        &w.cy,
        Method::POST,
        "/consultations/calm/flags",
        Some(&json!({"target": target, "reason": "spam"})),
        201,
    )
    .await;
    let (st, _) = w
        .call(
            &w.bob,
            Method::POST,
            "/consultations/calm/flags",
            Some(&json!({"target": "comment:nope", "reason": "spam"})),
        )
        .await;
    assert_eq!(st, 404);

    // the queue is the moderators'
    let (st, _) = w.call(&w.bob, Method::GET, "/moderation/queue", None).await;
    assert_eq!(st, 403);
    let (st, _) = w
        .call(&w.planner, Method::GET, "/moderation/queue", None)
        .await;
    assert_eq!(st, 403);
    let q = w
        .ok(&w.moderator, Method::GET, "/moderation/queue", None, 200)
        .await;
    assert_eq!(q.as_array().unwrap().len(), 1, "{q}");
    assert_eq!(q[0]["flags"], 2);
    assert_eq!(q[0]["reasons"], json!({"offensive": 1, "spam": 1}));
    assert_eq!(q[0]["item"]["body"], "Rude words about a neighbour");

    // hiding needs a reason, which everyone sees; the text is the author's and moderators' only
    let act =
        |action: &str, reason: &str| json!({"target": target, "action": action, "reason": reason});
    let (st, _) = w
        .call(
            &w.moderator,
            Method::POST,
            "/moderation/actions",
            Some(&act("hide", "")),
        )
        .await;
    assert_eq!(st, 400);
    let (st, _) = w
        .call(
            &w.bob,
            Method::POST,
            "/moderation/actions",
            Some(&act("hide", "no")),
        )
        .await;
    assert_eq!(st, 403);
    let entry = w
        .ok(
            &w.moderator,
            Method::POST,
            "/moderation/actions",
            Some(&act("hide", "Personal attack (rule 2)")),
            201,
        )
        .await;
    assert_eq!(entry["flags"], 2);
    let q = w
        .ok(&w.moderator, Method::GET, "/moderation/queue", None, 200)
        .await;
    assert!(
        q.as_array().unwrap().is_empty(),
        "decided flags leave the queue: {q}"
    );
    for who in [&w.anonymous, &w.bob] {
        let c = w
            .ok(who, Method::GET, &format!("{path}/{bad_id}"), None, 200)
            .await;
        assert_eq!(c["state"], "hidden");
        assert_eq!(
            c["body"], "",
            "a hidden comment's text is not for others: {c}"
        );
        assert_eq!(c["hidden"]["reason"], "Personal attack (rule 2)");
        assert!(c["hidden"].get("by").is_none());
        let page = w.ok(who, Method::GET, path, None, 200).await;
        assert_eq!(page[0]["body"], "");
    }
    let own = w
        .ok(&w.ann, Method::GET, &format!("{path}/{bad_id}"), None, 200)
        .await;
    assert_eq!(
        own["body"], "Rude words about a neighbour",
        "its author still sees what was hidden"
    );
    let csv = w
        .anonymous
        .get(w.api("/consultations/calm/results.csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!csv.contains("Rude words"), "{csv}");
    let (st, _) = w
        .call(
            &w.bob,
            Method::PUT,
            &format!("{path}/{bad_id}/vote"),
            Some(&json!({"value": 1})),
        )
        .await;
    assert_eq!(st, 409);
    let (st, _) = w
        .call(
            &w.bob,
            Method::POST,
            path,
            Some(&json!({"body": "reply", "stance": "for", "parent": bad_id})),
        )
        .await;
    assert_eq!(st, 409);
    let n = w.ok(&w.ann, Method::GET, "/notifications", None, 200).await;
    assert_eq!(n["items"][0]["kind"], "moderation");
    assert!(n["items"][0]["text"]["en"]
        .as_str()
        .unwrap()
        .contains("Personal attack"));

    // the public log
    let log = w
        .ok(
            &w.anonymous,
            Method::GET,
            "/moderation/log?consultation=calm",
            None,
            200,
        )
        .await;
    assert_eq!(log[0]["action"], "hide");
    assert_eq!(log[0]["reason"], "Personal attack (rule 2)");
    assert_eq!(log[0]["target"], target.as_str());
    assert!(log[0].get("moderator").is_none(), "{log}");
    let log = w
        .ok(&w.admin, Method::GET, "/moderation/log", None, 200)
        .await;
    assert_eq!(log[0]["moderator"], "mo");
    // restoring, and dismissing unfounded flags
    w.ok(
        &w.moderator,
        Method::POST,
        "/moderation/actions",
        Some(&act("restore", "Edited on appeal")),
        201,
    )
    .await;
    let c = w
        .ok(&w.bob, Method::GET, &format!("{path}/{bad_id}"), None, 200)
        .await;
    assert_eq!(
        (c["state"].as_str(), c["body"].as_str()),
        (Some("visible"), Some("Rude words about a neighbour"))
    );
    w.ok(
        &w.bob,
        Method::POST,
        "/consultations/calm/flags",
        Some(&json!({"target": target, "reason": "spam"})),
        201,
    )
    .await;
    w.ok(
        &w.moderator,
        Method::POST,
        "/moderation/actions",
        Some(&json!({"target": target, "action": "dismiss"})),
        201,
    )
    .await;
    let log = w
        .ok(&w.anonymous, Method::GET, "/moderation/log", None, 200)
        .await;
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["dismiss", "restore", "hide"]);
    let audit = w.ok(&w.admin, Method::GET, "/audit", None, 200).await;
    assert!(audit.to_string().contains("moderation.hide"), "{audit}");

    // a moderator who erases their account leaves their decisions public, without their name
    w.ok(
        &w.moderator,
        Method::POST,
        "/moderation/actions",
        Some(&act("hide", "Personal attack (rule 2)")),
        201,
    )
    .await;
    let c = w
        .ok(
            &w.admin,
            Method::GET,
            &format!("{path}/{bad_id}"),
            None,
            200,
        )
        .await;
    assert_eq!(c["hidden"]["by"], "mo");
    let erased = w.ok(&w.moderator, Method::DELETE, "/me", None, 200).await;
    assert_eq!(erased["moderation"], 4, "{erased}");
    let log = w
        .ok(&w.admin, Method::GET, "/moderation/log", None, 200)
        .await;
    assert_eq!(log.as_array().unwrap().len(), 4, "{log}");
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|e| e["moderator"].is_null()),
        "{log}"
    );
    assert!(!log.to_string().contains("\"mo\""), "{log}");
    let c = w
        .ok(
            &w.admin,
            Method::GET,
            &format!("{path}/{bad_id}"),
            None,
            200,
        )
        .await;
    assert_eq!(
        (c["state"].as_str(), c["hidden"]["reason"].as_str()),
        (Some("hidden"), Some("Personal attack (rule 2)"))
    );
    assert!(c["hidden"]["by"].is_null(), "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phases_open_and_close_what_participants_may_do() {
    let w = World::new().await;
    w.consultation("early", "information", json!({})).await;
    let (st, v) = w
        .call(
            &w.ann,
            Method::POST,
            "/consultations/early/comments",
            Some(&json!({"body": "Too soon?", "stance": "for"})),
        )
        .await;
    assert_eq!(st, 409);
    assert!(v["detail"].as_str().unwrap().contains("information"), "{v}");
    w.consultation("final", "voting", json!({})).await;
    let (st, v) = w
        .call(
            &w.ann,
            Method::POST,
            "/consultations/final/proposals",
            Some(&json!({"title": "Late", "body": "x", "location": [24.9, 60.2]})),
        )
        .await;
    assert_eq!(st, 409, "no new proposals in the final round: {v}");
    w.comment(
        &w.ann,
        "final",
        json!({"body": "Still commenting", "stance": "neutral"}),
    )
    .await;
    let closed = w.consultation("over", "results", json!({})).await;
    assert_eq!(
        closed["allowed"],
        json!({"comment": false, "vote": false, "propose": false, "support": false, "survey": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_can_need_an_old_account_or_a_verified_address() {
    let outbox = tempfile::tempdir().unwrap();
    let config = twin_api::ApiConfig {
        mail_outbox: Some(outbox.path().to_path_buf()),
        ..Default::default()
    };
    let w = World::with(config).await;
    w.consultation("aged", "feedback", json!({"minAccountAgeHours": 24}))
        .await;
    let c = w
        .comment(
            &w.ann,
            "aged",
            json!({"body": "Vote on me", "stance": "for"}),
        )
        .await;
    let vote = format!(
        "/consultations/aged/comments/{}/vote",
        c["id"].as_str().unwrap()
    );
    let (st, v) = w
        .call(&w.bob, Method::PUT, &vote, Some(&json!({"value": 1})))
        .await;
    assert_eq!(st, 403, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("24 hours"), "{v}");
    // the page says so beforehand: what the account may not do here, and why
    let page = w
        .ok(&w.bob, Method::GET, "/consultations/aged", None, 200)
        .await;
    assert_eq!(page["allowed"]["vote"], true, "the phase opens votes");
    assert_eq!(page["eligible"]["ok"], false, "{page}");
    assert!(page["eligible"]["reason"]
        .as_str()
        .unwrap()
        .contains("24 hours"));
    let page = w
        .ok(&w.anonymous, Method::GET, "/consultations/aged", None, 200)
        .await;
    assert!(page["eligible"].is_null(), "{page}");

    w.consultation(
        "verified",
        "feedback",
        json!({"requireVerifiedEmail": true}),
    )
    .await;
    let c = w
        .comment(
            &w.ann,
            "verified",
            json!({"body": "Vote on me too", "stance": "for"}),
        )
        .await;
    let vote = format!(
        "/consultations/verified/comments/{}/vote",
        c["id"].as_str().unwrap()
    );
    let (st, v) = w
        .call(&w.bob, Method::PUT, &vote, Some(&json!({"value": 1})))
        .await;
    assert_eq!(st, 403, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("verified e-mail"),
        "{v}"
    );
    // bob verifies his address with the code the twin mails him
    let (st, _) = w
        .call(
            &w.bob,
            Method::POST,
            "/me/email",
            Some(&json!({"email": "not an address"})),
        )
        .await;
    assert_eq!(st, 400);
    w.ok(
        &w.bob,
        Method::POST,
        "/me/email",
        Some(&json!({"email": "Bob@Example.org"})),
        202,
    )
    .await;
    let mail = std::fs::read_dir(outbox.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "eml"))
        .unwrap();
    let text = std::fs::read_to_string(mail).unwrap();
    assert!(text.contains("To: bob@example.org"), "{text}");
    let code = text.split("Your urbantwin code: ").nth(1).unwrap()[..6].to_string();
    // a typing slip costs no try; a wrong code does
    let (st, v) = w
        .call(
            &w.bob,
            Method::POST,
            "/me/email/verify",
            Some(&json!({"code": "12"})),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("six digits"), "{v}");
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let (st, v) = w
        .call(
            &w.bob,
            Method::POST,
            "/me/email/verify",
            Some(&json!({"code": wrong})),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("4 tries left"),
        "{v}"
    );
    let status = w.ok(&w.bob, Method::GET, "/me/email", None, 200).await;
    assert_eq!(
        (
            &status["verified"],
            &status["email"],
            &status["pending"]["email"],
            &status["pending"]["triesLeft"]
        ),
        (
            &json!(false),
            &json!(null),
            &json!("bob@example.org"),
            &json!(4)
        ),
        "{status}"
    );
    w.ok(
        &w.bob,
        Method::POST,
        "/me/email/verify",
        Some(&json!({"code": code})),
        200,
    )
    .await;
    let status = w.ok(&w.bob, Method::GET, "/me/email", None, 200).await;
    assert_eq!(
        status,
        json!({"verified": true, "email": "bob@example.org", "pending": null})
    );
    let (st, _) = w.call(&w.anonymous, Method::GET, "/me/email", None).await;
    assert_eq!(st, 401);
    let status = w.ok(&w.cy, Method::GET, "/me/email", None, 200).await;
    assert_eq!(
        status,
        json!({"verified": false, "email": null, "pending": null})
    );
    w.ok(&w.bob, Method::PUT, &vote, Some(&json!({"value": 1})), 200)
        .await;
    let page = w
        .ok(&w.bob, Method::GET, "/consultations/verified", None, 200)
        .await;
    assert_eq!(page["eligible"], json!({"ok": true}), "{page}");
    // one address, one account
    let (st, v) = w
        .call(
            &w.cy,
            Method::POST,
            "/me/email",
            Some(&json!({"email": "bob@example.org"})),
        )
        .await;
    assert_eq!(st, 409, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surveys_results_and_open_data() {
    let w = World::new().await;
    let survey = json!([{"id": "travel", "title": {"en": "How do you travel?"}, "questions": [
        {"id": "mode", "text": {"en": "Mostly by"}, "kind": "single", "options": [{"en": "car"}, {"en": "bike"}, {"en": "foot"}], "required": true},
        {"id": "calm", "text": {"en": "How calm is it now?"}, "kind": "scale"},
        {"id": "why", "text": {"en": "Why?"}, "kind": "text"}]}]);
    w.consultation("calm", "feedback", json!({"surveys": survey}))
        .await;
    let response = "/consultations/calm/surveys/travel/response";
    let (st, _) = w.call(&w.ann, Method::GET, response, None).await;
    assert_eq!(st, 404);
    let (st, v) = w
        .call(
            &w.ann,
            Method::PUT,
            response,
            Some(&json!({"answers": {"calm": 3}})),
        )
        .await;
    assert_eq!(st, 400, "the required question: {v}");
    w.ok(
        &w.ann,
        Method::PUT,
        response,
        Some(&json!({"answers": {"mode": 1, "calm": 2, "why": "I live here"}})),
        201,
    )
    .await;
    w.ok(
        &w.ann,
        Method::PUT,
        response,
        Some(&json!({"answers": {"mode": 2, "calm": 2}})),
        200,
    )
    .await;
    w.ok(
        &w.bob,
        Method::PUT,
        response,
        Some(&json!({"answers": {"mode": 2, "why": "private thoughts"}})),
        201,
    )
    .await;
    let mine = w.ok(&w.ann, Method::GET, response, None, 200).await;
    assert_eq!(mine["answers"], json!({"mode": 2, "calm": 2}));

    w.comment(&w.ann, "calm", json!({"body": "For it, \"obviously\", really", "stance": "for", "scenario": w.scenario, "location": [24.91, 60.205]})).await;
    w.comment(
        &w.bob,
        "calm",
        json!({"body": "=cmd|' /C calc'!A0", "stance": "against", "scenario": w.scenario}),
    )
    .await;
    w.comment(
        &w.bob,
        "calm",
        json!({"body": "Changed my mind", "stance": "for", "scenario": w.scenario}),
    )
    .await;
    w.comment(
        &w.cy,
        "calm",
        json!({"body": "In general, fine", "stance": "neutral"}),
    )
    .await;
    w.ok(
        &w.cy,
        Method::POST,
        "/consultations/calm/proposals",
        Some(&json!({"title": "Trees", "body": "Plant trees", "location": [24.92, 60.21]})),
        201,
    )
    .await;

    let r = w
        .ok(
            &w.anonymous,
            Method::GET,
            "/consultations/calm/results",
            None,
            200,
        )
        .await;
    assert_eq!(r["participants"], 3, "{r}");
    assert_eq!(r["comments"], 4);
    assert_eq!(r["proposals"], 1);
    assert_eq!(
        r["stance"][w.scenario.as_str()],
        json!({"for": 2, "neutral": 0, "against": 0}),
        "each person's latest stance: {r}"
    );
    assert_eq!(
        r["stance"]["_general"],
        json!({"for": 0, "neutral": 1, "against": 0})
    );
    assert_eq!(r["surveys"]["travel"]["responses"], 2);
    assert_eq!(
        r["surveys"]["travel"]["questions"]["mode"]["counts"],
        json!([0, 0, 2])
    );
    assert_eq!(
        r["surveys"]["travel"]["questions"]["calm"]["counts"],
        json!([0, 1, 0, 0, 0])
    );
    assert!(
        !r.to_string().contains("private thoughts"),
        "free text is counted, not shown"
    );
    // the page's counts are computed at most once a second
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let v = w
        .ok(&w.anonymous, Method::GET, "/consultations/calm", None, 200)
        .await;
    assert_eq!(v["counts"]["participants"], 3);

    // CSV: one row per contribution, no authors, formulas defused, quotes escaped
    let resp = w
        .anonymous
        .get(w.api("/consultations/calm/results.csv"))
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = resp.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("type,id,created_at,scenario,stance"));
    assert_eq!(lines.len(), 1 + 5, "{csv}");
    assert!(
        csv.contains("\"For it, \"\"obviously\"\", really\""),
        "{csv}"
    );
    assert!(csv.contains("'=cmd"), "{csv}");
    assert!(
        !csv.contains("ann") && !csv.contains("bob"),
        "no authors: {csv}"
    );
    // GeoJSON: the located ones
    let g = w
        .ok(
            &w.anonymous,
            Method::GET,
            "/consultations/calm/results.geojson",
            None,
            200,
        )
        .await;
    let f = g["features"].as_array().unwrap();
    assert_eq!(f.len(), 2, "{g}");
    assert!(f
        .iter()
        .all(|x| x["geometry"]["type"] == "Point" && x["properties"].get("author").is_none()));
    // the catalogue lists the results as open data
    let cat = w
        .anonymous
        .get(format!("{}/catalog.jsonld", w.s.root()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(cat.contains("/api/consultations/calm/results.csv"), "{cat}");
    assert!(cat.contains("Consultation results: A calmer Keskuskatu"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_export_and_erase_their_data() {
    let w = World::new().await;
    w.consultation("calm", "feedback", json!({})).await;
    // a participant who signed up with a password
    let jar = Client::new();
    let r = jar
        .post(w.api("/auth/register"))
        .header("Content-Type", "application/json")
        .body(
            json!({"id": "dana", "password": "a long passphrase 42", "displayName": "D."})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let v: Value = r.json().await.unwrap();
    let csrf = v["csrfToken"].as_str().unwrap().to_string();
    let send = |m: Method, path: &str, body: Option<Value>| {
        let mut r = jar
            .request(m, w.api(path))
            .header("Content-Type", "application/json")
            .header("Cookie", &cookie)
            .header("X-CSRF-Token", &csrf);
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        r.send()
    };
    let r = send(
        Method::POST,
        "/consultations/calm/comments",
        Some(json!({"body": "Mine to erase", "stance": "against", "location": [24.9, 60.2]})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let mine: Value = r.json().await.unwrap();
    assert_eq!(mine["authorName"], "D.");
    let other = w
        .comment(&w.ann, "calm", json!({"body": "Ann's", "stance": "for"}))
        .await;
    let r = send(
        Method::PUT,
        &format!(
            "/consultations/calm/comments/{}/vote",
            other["id"].as_str().unwrap()
        ),
        Some(json!({"value": -1})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    send(Method::PUT, "/consultations/calm/follow", None)
        .await
        .unwrap();

    let export: Value = send(Method::GET, "/me/participation", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(export["account"]["id"], "dana");
    assert!(export["account"].get("passwordHash").is_none());
    assert_eq!(export["comments"][0]["content"]["body"], "Mine to erase");
    assert_eq!(export["votes"][0]["value"], -1);
    assert_eq!(export["stances"].as_array().unwrap().len(), 1);
    assert_eq!(export["follows"][0]["target"], "calm");

    let r = send(Method::DELETE, "/me", Some(json!({"password": "wrong"})))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = send(
        Method::DELETE,
        "/me",
        Some(json!({"password": "a long passphrase 42"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // gone: the account, the vote, the text and the name; the thread keeps its place
    let c = w
        .ok(
            &w.anonymous,
            Method::GET,
            &format!(
                "/consultations/calm/comments/{}",
                mine["id"].as_str().unwrap()
            ),
            None,
            200,
        )
        .await;
    assert_eq!(
        (c["state"].as_str(), c["body"].as_str()),
        (Some("deleted"), Some(""))
    );
    assert!(c["author"].is_null() && c["authorName"].is_null(), "{c}");
    let c = w
        .ok(
            &w.anonymous,
            Method::GET,
            &format!(
                "/consultations/calm/comments/{}",
                other["id"].as_str().unwrap()
            ),
            None,
            200,
        )
        .await;
    assert_eq!(c["votes"], json!({"up": 0, "down": 0}));
    let r = w
        .ok(
            &w.anonymous,
            Method::GET,
            "/consultations/calm/results",
            None,
            200,
        )
        .await;
    assert_eq!(r["participants"], 1, "{r}");
    let (st, _) = w.call(&w.admin, Method::GET, "/accounts/dana", None).await;
    assert_eq!(st, 404);
    let login = w
        .call(
            &Client::new(),
            Method::POST,
            "/auth/login",
            Some(&json!({"id": "dana", "password": "a long passphrase 42"})),
        )
        .await;
    assert_eq!(login.0, 401);
    let audit = w.ok(&w.admin, Method::GET, "/audit", None, 200).await;
    assert!(audit.to_string().contains("account.erase"));
    // an API-key account has no password to confirm with
    let out = w.ok(&w.cy, Method::DELETE, "/me", None, 200).await;
    assert_eq!(out["account"], true);
    let (st, _) = w.call(&w.cy, Method::GET, "/me/participation", None).await;
    assert_eq!(st, 401, "its keys went with it");
}
