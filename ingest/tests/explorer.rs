//! The explorer's HTTP layer: the stats endpoints it reads besides the older ones (`/v1/stats/sites`,
//! `/v1/stats/timeline`, `/v1/stats/sessions`, `/v1/stats/sessions/{id}`) on SQLite and PostgreSQL, with their
//! refusals (401 without a token, 403 for a token without the `read` scope, 400 naming the bad parameter), and
//! the page itself (`/ui/`: CSP, content types, ETags). The page in a browser: js-sdk/test/browser/explorer.test.mjs.

#[macro_use]
mod support;

use serde_json::{json, Value};
use support::*;

both!(explorer_endpoints_answer_from_events_sent);

fn event(session: &str, kind: &str, url: &str, extra: Value) -> Value {
    let mut e = json!({"type": kind, "session_id": session, "timestamp": now_ms(), "page": {"url": url},
                       "release": "shop@1.4.2"});
    e.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    e
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = app.client.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn explorer_endpoints_answer_from_events_sent(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn_app(&db, &Opts::default()).await;
    let shop = "https://shop.example.com";
    let mut events = vec![
        page_load("sess-a", &format!("{shop}/products/7"), 640.0),
        event(
            "sess-a",
            "api_call",
            &format!("{shop}/products/7"),
            json!({"api": {"method": "GET", "endpoint": "https://api.example.com/cart/7", "duration": 85, "status": 503}}),
        ),
        event(
            "sess-a",
            "web_vital",
            &format!("{shop}/products/7"),
            json!({"name": "LCP", "value": 1830, "rating": "good"}),
        ),
        event(
            "sess-a",
            "error",
            &format!("{shop}/cart"),
            json!({"error": {"message": "TypeError: x is undefined", "stack": "TypeError: x is undefined\n    at f (https://shop.example.com/app.js:1:2)"}}),
        ),
        page_load("sess-b", &format!("{shop}/"), 300.0),
    ];
    // In time order within the session, a millisecond apart.
    let t0 = now_ms() - 1_000;
    for (i, e) in events.iter_mut().enumerate() {
        e["timestamp"] = json!(t0 + i as i64);
    }
    let r = app.send(&json!({ "events": events })).await;
    assert_eq!(r.status(), 202);
    let read = admin_token("read");
    let token = Some(read.as_str());

    // The sites, ids only: the config's keys and origins never appear.
    let (status, sites) = get(&app, "/v1/stats/sites", token).await;
    assert_eq!(status, 200);
    assert_eq!(sites, json!({"sites": [{"id": "shop"}, {"id": "blog"}]}));
    let text = sites.to_string();
    assert!(!text.contains(KEY) && !text.contains(OTHER_KEY) && !text.contains("example"));

    // The chart: 5-minute buckets over 24 h, this minute's counts in the last buckets.
    let (status, t) = get(&app, "/v1/stats/timeline?site=shop&window=24h", token).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["bucket_ms"], 300_000);
    let buckets = t["buckets"].as_array().unwrap();
    assert!((288..=290).contains(&buckets.len()), "{}", buckets.len());
    assert_eq!(t["totals"], json!({"page_loads": 2, "errors": 1}));
    let sum = |k: &str| buckets.iter().map(|b| b[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("page_loads"), sum("errors")), (2, 1));
    let (_, hour) = get(&app, "/v1/stats/timeline?site=shop&window=1h", token).await;
    assert_eq!(hour["bucket_ms"], 60_000);

    // Sessions: the latest first.
    let (status, s) = get(&app, "/v1/stats/sessions?site=shop&window=24h", token).await;
    assert_eq!(status, 200, "{s}");
    let list = s["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], "sess-b");
    assert_eq!(list[1]["id"], "sess-a");
    assert_eq!(list[1]["page_views"], 1);
    assert_eq!(list[1]["errors"], 1);
    assert_eq!(list[1]["last_route"], "/cart");
    assert_eq!(list[1]["release"], "shop@1.4.2");
    let (_, one) = get(&app, "/v1/stats/sessions?site=shop&limit=1", token).await;
    assert_eq!(one["sessions"].as_array().unwrap().len(), 1);

    // One session's events in order, each with what its type carries.
    let (status, a) = get(&app, "/v1/stats/sessions/sess-a?site=shop", token).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["truncated"], false);
    let evs = a["events"].as_array().unwrap();
    let types: Vec<_> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["page_load", "api_call", "web_vital", "error"]);
    assert_eq!(evs[0]["route"], "/products/:id");
    assert_eq!(evs[0]["value"], 640.0);
    assert_eq!(evs[1]["endpoint"], "GET api.example.com/cart/:id");
    assert_eq!(evs[1]["status"], 503);
    assert_eq!(evs[2]["name"], "LCP");
    assert_eq!(evs[2]["rating"], "good");
    assert_eq!(evs[3]["name"], "TypeError: x is undefined");
    assert_eq!(evs[3]["group"].as_str().unwrap().len(), 16);
    let (_, two) = get(&app, "/v1/stats/sessions/sess-a?site=shop&limit=2", token).await;
    assert_eq!(two["events"].as_array().unwrap().len(), 2);
    assert_eq!(two["truncated"], true);
    // A session id with URL-encoded characters is taken as it is; an unknown one has no events.
    let (status, none) = get(&app, "/v1/stats/sessions/n%2Fo%20pe?site=shop", token).await;
    assert_eq!(status, 200);
    assert_eq!(none["session"], "n/o pe");
    assert_eq!(none["events"], json!([]));

    // Refusals, for every new endpoint: no token, a token whose scope does not allow reading, bad parameters.
    let endpoints = [
        "/v1/stats/sites",
        "/v1/stats/timeline?site=shop",
        "/v1/stats/sessions?site=shop",
        "/v1/stats/sessions/sess-a?site=shop",
    ];
    let other_scope = admin_token("ingest");
    for path in endpoints {
        let (status, body) = get(&app, path, None).await;
        assert_eq!(status, 401, "{path}");
        assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
        let (status, body) = get(&app, path, Some(&other_scope)).await;
        assert_eq!(status, 403, "{path}");
        assert!(body["error"].as_str().unwrap().contains("scope"), "{body}");
        let (status, _) = get(&app, path, Some("not.a.token")).await;
        assert_eq!(status, 401, "{path}");
    }
    let long_id = "x".repeat(129);
    for (path, names) in [
        ("/v1/stats/timeline", "?site="),
        ("/v1/stats/timeline?site=nope", "unknown site `nope`"),
        (
            "/v1/stats/timeline?site=shop&window=forever",
            "window `forever`",
        ),
        ("/v1/stats/timeline?site=shop&window=0s", "window `0s`"),
        ("/v1/stats/timeline?site=shop&window=401d", "window `401d`"),
        ("/v1/stats/sessions", "?site="),
        ("/v1/stats/sessions?site=shop&window=x", "window `x`"),
        ("/v1/stats/sessions?site=shop&limit=0", "limit `0`"),
        ("/v1/stats/sessions?site=shop&limit=201", "limit `201`"),
        ("/v1/stats/sessions?site=shop&limit=ten", "limit `ten`"),
        (
            "/v1/stats/sessions/sess-a?site=shop&limit=2001",
            "limit `2001`",
        ),
        ("/v1/stats/sessions/sess-a?site=shop&limit=-1", "limit `-1`"),
        ("/v1/stats/sessions/sess-a", "?site="),
        (
            &format!("/v1/stats/sessions/{long_id}?site=shop"),
            "session `",
        ),
        ("/v1/stats/sessions/a%0Ab?site=shop", "session `"),
    ] {
        let (status, body) = get(&app, path, token).await;
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(names), "{path}: {message}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_csp_and_etags() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = spawn_app(&db, &Opts::default()).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(app.url("/ui")).send().await.unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "/ui/");
    // The server's own address leads to the explorer, for now (307: not cached for good).
    let r = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], "/ui/");

    for (path, content_type, contains) in [
        ("/ui/", "text/html; charset=utf-8", "<script src=\"app.js\""),
        (
            "/ui/app.js",
            "text/javascript; charset=utf-8",
            "sessionStorage",
        ),
        ("/ui/app.css", "text/css; charset=utf-8", "@media"),
        ("/ui/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let r = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["content-type"], content_type, "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "no-cache");
        let etag = h["etag"].to_str().unwrap().to_string();
        assert!(r.text().await.unwrap().contains(contains), "{path}");
        // Revalidation: unchanged is a 304 without a body.
        let again = client
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
        assert!(again.bytes().await.unwrap().is_empty());
        let stale = client
            .get(app.url(path))
            .header("if-none-match", "\"0000000000000000\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 200);
    }
    let r = client.head(app.url("/ui/app.js")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(app.url("/ui/nope.js")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("content-security-policy"));
    app.stop().await;
}
