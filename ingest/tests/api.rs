//! `POST /v1/events` and friends against a real server over a real SQLite store: every response code.

mod support;

use flate2::write::GzEncoder;
use serde_json::{json, Value};
use std::io::Write;
use support::*;

async fn app() -> (TestDb, TestApp) {
    app_with(Opts::default()).await
}

async fn app_with(o: Opts) -> (TestDb, TestApp) {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = spawn_app(&db, &o).await;
    (db, app)
}

/// The rows of a query of three text columns in the test's SQLite file (read once the app has stopped).
fn text_rows(db: &TestDb, sql: &str) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(db.sqlite_path.as_ref().unwrap()).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn seed_batch_is_accepted_byte_for_byte() {
    // The seed fixture unchanged (its 2024 timestamps): the past limit is widened for this test.
    let (_db, app) = app_with(Opts {
        extra: "  max_past: 100000d\n".into(),
        ..Opts::default()
    })
    .await;
    let seed = r#"{"events":[{"type":"page_load","session_id":"s-1","timestamp":1732350000000,"user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36","viewport":{"width":1280,"height":720},"page":{"url":"https://shop.example.com/products/123?ref=x#top","referrer":""},"metrics":{"dns_lookup":12,"tcp_connection":20,"tls_negotiation":15,"ttfb":120,"content_download":30,"dom_processing":200,"dom_complete":450,"onload":-1732350000000,"total":-1732349999000}},{"type":"api_call","session_id":"s-1","timestamp":1732350000500,"user_agent":"...","viewport":{"width":1280,"height":720},"api":{"method":"GET","endpoint":{},"duration":85,"status":200}},{"type":"long_task","session_id":"s-1","timestamp":1732350001000,"user_agent":"...","viewport":{"width":1280,"height":720},"duration":120,"attribution":[{"name":"self","entryType":"taskattribution","startTime":0,"duration":0}]}]}"#;
    let r = app
        .events()
        .header("content-type", "text/plain;charset=UTF-8")
        .header("x-api-key", KEY)
        .header("origin", ORIGIN)
        .body(seed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.headers()["access-control-allow-origin"].to_str().unwrap(),
        ORIGIN
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], 3, "{body}");
    assert_eq!(body["rejected"], json!([]));
    let warnings = body["warnings"].as_array().unwrap();
    assert!(warnings
        .iter()
        .any(|w| w["index"] == 0 && w["warning"].as_str().unwrap().starts_with("metrics.onload")));
    assert!(warnings
        .iter()
        .any(|w| w["index"] == 1 && w["warning"].as_str().unwrap().contains("unknown")));
    let m = app.metrics().await;
    assert!(
        m.contains(
            r#"rum_events_total{site="shop",event_type="page_load",page="/products/:id"} 1"#
        ),
        "{m}"
    );
    assert!(m.contains(r#"rum_page_load_seconds_sum{site="shop",page="/products/:id"} 0.45"#));
    // Negative onload/total were never observed: the only page-load sample is dom_complete (0.45 s).
    assert!(m.contains(r#"rum_page_load_seconds_count{site="shop",page="/products/:id"} 1"#));
    app.stop().await;
}

#[tokio::test]
async fn seed_batch_with_current_timestamps_and_default_limits() {
    let (_db, app) = app().await;
    let r = app
        .events()
        .header("x-api-key", KEY)
        .body(seed_batch())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], 3, "{body}");
    let pages = app.stats("pages").await;
    assert_eq!(pages["pages"][0]["route"], "/products/:id", "{pages}");
    support::assert_percentile(&pages["pages"][0]["p50_ms"], 450.0);
    let api = app.stats("api").await;
    assert_eq!(api["api"][0]["endpoint"], "unknown", "{api}");
    app.stop().await;
}

#[tokio::test]
async fn each_event_of_a_mixed_batch_gets_its_own_page_and_browser() {
    // The handler shapes a page URL and a user agent once per run of equal ones: switching back and forth
    // within a batch must still shape every event by its own.
    let (db, app) = app().await;
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let mut events = vec![
        page_load("s", "https://shop.example.com/products/1", 100.0),
        page_load("s", "https://shop.example.com/cart?step=2", 200.0),
        page_load("s", "https://shop.example.com/products/2", 300.0),
    ];
    events[1]["user_agent"] = json!(firefox);
    let r = app.send(&json!({ "events": events })).await;
    assert_eq!(r.status(), 202);
    let m = app.metrics().await;
    assert!(
        m.contains(r#"rum_page_load_seconds_count{site="shop",page="/products/:id"} 2"#),
        "{m}"
    );
    assert!(
        m.contains(r#"rum_page_load_seconds_count{site="shop",page="/cart"} 1"#),
        "{m}"
    );
    app.stop().await;
    let rows = text_rows(&db, "SELECT route, url, browser FROM events ORDER BY value");
    let expected = [
        (
            "/products/:id",
            "https://shop.example.com/products/1",
            "Chrome",
        ),
        ("/cart", "https://shop.example.com/cart", "Firefox"),
        (
            "/products/:id",
            "https://shop.example.com/products/2",
            "Chrome",
        ),
    ];
    assert_eq!(rows.len(), 3);
    for (row, (route, url, browser)) in rows.iter().zip(expected) {
        assert_eq!(
            (row.0.as_str(), row.1.as_str(), row.2.as_str()),
            (route, url, browser)
        );
    }
}

#[tokio::test]
async fn events_without_a_user_agent_take_the_requests() {
    // The SDK sends its batches from the page's browser and no longer repeats the user agent in every event.
    let (db, app) = app().await;
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let mut events = vec![
        page_load("s", "https://shop.example.com/products/1", 100.0),
        page_load("s", "https://shop.example.com/products/2", 200.0),
    ];
    events[0].as_object_mut().unwrap().remove("user_agent");
    let r = app
        .events()
        .header("x-api-key", KEY)
        .header("user-agent", firefox)
        .body(json!({ "events": events }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    app.stop().await;
    let conn = rusqlite::Connection::open(db.sqlite_path.as_ref().unwrap()).unwrap();
    let browsers: Vec<String> = conn
        .prepare("SELECT browser FROM events ORDER BY value")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // the first from the request header, the second by its own field
    assert_eq!(browsers, ["Firefox", "Chrome"]);
}

#[tokio::test]
async fn events_without_a_session_take_the_shared_fields_of_the_whole_event_before_them() {
    // rum-sdk.js writes session, viewport, page, release and user only in an event whose differ from the event's
    // before it: the others are stored whole all the same. One with no whole event before it has no session.
    let (db, app) = app().await;
    let t = now_ms();
    let lean = |ts: i64, path: &str| {
        json!({"type": "api_call", "timestamp": ts, "event_id": uuid::Uuid::now_v7().to_string(),
               "api": {"method": "GET", "endpoint": format!("https://shop.example.com{path}"), "duration": 12, "status": 200}})
    };
    let body = json!({"events": [
        lean(t, "/api/orphan"),
        {"type": "custom", "name": "start", "session_id": "s1", "timestamp": t,
         "viewport": {"width": 800, "height": 600}, "page": {"url": "https://shop.example.com/products/1", "referrer": ""},
         "release": "shop@1.4.2", "user_id": "u1"},
        lean(t + 1, "/api/items"),
        {"type": "error", "timestamp": t + 2, "page": {"url": "https://shop.example.com/cart"},
         "error": {"message": "boom", "kind": "manual"}},
        {"type": "custom", "name": "next", "session_id": "s2", "timestamp": t + 3,
         "page": {"url": "https://shop.example.com/account"}},
        lean(t + 4, "/api/me"),
    ]});
    let r = app.send(&body).await;
    assert_eq!(r.status(), 202);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["accepted"], 5, "{b}");
    assert_eq!(b["rejected"][0]["index"], 0, "{b}");
    assert_eq!(
        b["rejected"][0]["reason"], "missing field `session_id`",
        "{b}"
    );
    let m = app.metrics().await;
    assert!(
        m.lines()
            .any(|l| l.starts_with("rum_api_call_duration_seconds_count{")
                && l.contains("/api/items")
                && l.ends_with(" 1")),
        "{m}"
    );
    app.stop().await;
    let rows = text_rows(
        &db,
        "SELECT session_id, url, raw FROM events ORDER BY client_ts_ms",
    );
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|(s, u, _)| (s.as_str(), u.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("s1", "https://shop.example.com/products/1"),
            ("s1", "https://shop.example.com/products/1"),
            ("s1", "https://shop.example.com/cart"),
            ("s2", "https://shop.example.com/account"),
            ("s2", "https://shop.example.com/account"),
        ]
    );
    // stored whole: the explorer reads each event on its own
    let items: Value = serde_json::from_str(&rows[1].2).unwrap();
    assert_eq!(items["viewport"], json!({"width": 800, "height": 600}));
    assert_eq!(items["release"], "shop@1.4.2");
    assert_eq!(items["user_id"], "u1");
    assert_eq!(
        items["api"]["endpoint"],
        "https://shop.example.com/api/items"
    );
    let error: Value = serde_json::from_str(&rows[2].2).unwrap();
    assert_eq!(
        error["page"]["url"], "https://shop.example.com/cart",
        "its own page kept"
    );
    assert_eq!(error["user_id"], "u1");
    let me: Value = serde_json::from_str(&rows[4].2).unwrap();
    assert_eq!(me.get("user_id"), None, "from the nearest whole event only");
    assert_eq!(me.get("viewport"), None);
}

#[tokio::test]
async fn partial_acceptance_reports_bad_events_by_index() {
    let (_db, app) = app().await;
    let body = json!({"events": [
        page_load("s1", "https://shop.example.com/", 900.0),
        {"type": "teleport", "session_id": "s1", "timestamp": now_ms()},
        {"type": "error", "session_id": "s1", "timestamp": 5},
        {"type": "web_vital", "session_id": "s1", "timestamp": now_ms(), "name": "LCP", "value": 1200,
         "page": {"url": "https://shop.example.com/"}},
        {"type": "web_vital", "session_id": "s1", "timestamp": now_ms(), "name": "LCP", "value": -1},
    ]});
    let r = app.send(&body).await;
    assert_eq!(r.status(), 202);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["accepted"], 2, "{b}");
    let idx: Vec<u64> = b["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, vec![1, 2, 4]);
    assert!(b["rejected"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("teleport"));
    let m = app.metrics().await;
    assert!(
        m.contains(r#"vantage_ingest_events_rejected_total{site="shop",reason="unknown_type"} 1"#)
    );
    assert!(m.contains(
        r#"vantage_ingest_events_rejected_total{site="shop",reason="timestamp_out_of_range"} 1"#
    ));
    assert!(m.contains(r#"rum_lcp_seconds_count{site="shop",page="/"} 1"#));
    app.stop().await;
}

#[tokio::test]
async fn auth_failures_are_401_and_origin_failures_403() {
    let (_db, app) = app().await;
    let body = json!({"events": [page_load("s", "/", 100.0)]}).to_string();
    let send = |key: Option<&str>, origin: Option<&str>, query: &str| {
        let mut rb = app
            .client
            .post(app.url(&format!("/v1/events{query}")))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(k) = key {
            rb = rb.header("x-api-key", k);
        }
        if let Some(o) = origin {
            rb = rb.header("origin", o);
        }
        rb.send()
    };
    let r = send(None, None, "").await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("X-API-Key"));
    let r = send(Some("wrong-key-123"), None, "").await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap().contains("wrong-key-123"));
    // Server-side sender (no Origin) with a valid key; key in the query string (sendBeacon).
    assert_eq!(send(Some(KEY), None, "").await.unwrap().status(), 202);
    assert_eq!(
        send(None, Some(ORIGIN), &format!("?api_key={KEY}"))
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        send(Some(KEY), Some("https://eu.shop.example.com"), "")
            .await
            .unwrap()
            .status(),
        202
    );
    // Another site's origin with this site's key; a look-alike origin.
    let r = send(Some(KEY), Some("https://blog.example.org"), "")
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_some());
    assert_eq!(
        send(Some(KEY), Some("https://shop.example.com.evil.io"), "")
            .await
            .unwrap()
            .status(),
        403
    );
    let m = app.metrics().await;
    assert!(
        m.contains(r#"vantage_ingest_http_requests_total{route="/v1/events",status="401"} 2"#),
        "{m}"
    );
    assert!(!m.contains("wrong-key-123") && !m.contains(KEY));
    app.stop().await;
}

#[tokio::test]
async fn body_errors_400_413_415() {
    let (_db, app) = app_with(Opts {
        max_events: 10,
        ..Opts::default()
    })
    .await;
    let post = |ct: &str, ce: Option<&str>, body: Vec<u8>| {
        let mut rb = app
            .client
            .post(app.url("/v1/events"))
            .header("x-api-key", KEY)
            .header("content-type", ct)
            .body(body);
        if let Some(ce) = ce {
            rb = rb.header("content-encoding", ce);
        }
        rb.send()
    };
    let r = post(
        "application/json",
        None,
        b"{\"events\": [\n  {\"type\": }".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let msg = r.text().await.unwrap();
    assert!(msg.contains("line 2 column"), "{msg}");
    let r = post("application/json", None, b"{\"evts\": []}".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("events"));
    let r = post("application/xml", None, b"<x/>".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = post("application/json", Some("br"), b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let big = vec![b' '; (1 << 20) + 1];
    let r = post("application/json", None, big).await.unwrap();
    assert_eq!(r.status(), 413);
    let many = json!({"events": (0..11).map(|i| page_load(&format!("s{i}"), "/", 1.0)).collect::<Vec<_>>()});
    let r = post("application/json", None, many.to_string().into_bytes())
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.text().await.unwrap().contains("11 events"));
    app.stop().await;
}

#[tokio::test]
async fn gzip_accepted_and_zip_bomb_refused() {
    // 16 MiB of spaces compress to ~16 KiB: under the wire limit, far over it once inflated. Built first:
    // compressing takes a while in debug builds, longer than the server keeps an idle connection.
    let bomb = gz(&vec![b' '; 16 << 20]);
    assert!(bomb.len() < 1 << 20);
    let (_db, app) = app().await;
    let body = json!({"events": [page_load("s", "https://shop.example.com/cart", 300.0)]});
    let r = app
        .events()
        .header("x-api-key", KEY)
        .header("content-encoding", "gzip")
        .body(gz(body.to_string().as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap()["accepted"], 1);
    let r = app
        .events()
        .header("x-api-key", KEY)
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.text().await.unwrap().contains("inflates"));
    let r = app
        .events()
        .header("x-api-key", KEY)
        .header("content-encoding", "gzip")
        .body(b"definitely not gzip".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn cors_preflight_allowed_and_denied() {
    let (_db, app) = app().await;
    let pre = |origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/v1/events"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, x-api-key, traceparent",
            )
            .send()
    };
    let r = pre("https://eu.shop.example.com").await.unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(
        h["access-control-allow-origin"],
        "https://eu.shop.example.com"
    );
    let allow = h["access-control-allow-headers"].to_str().unwrap();
    for need in ["content-type", "x-api-key", "traceparent"] {
        assert!(allow.contains(need), "{allow}");
    }
    assert_eq!(h["access-control-max-age"], "86400");
    let r = pre("https://evil.example.net").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let (_db, app) = app_with(Opts {
        rate: 1.0,
        burst: 500.0,
        ..Opts::default()
    })
    .await;
    let batch = json!({"events": (0..400).map(|i| page_load(&format!("s{i}"), "/", 5.0)).collect::<Vec<_>>()});
    assert_eq!(app.send(&batch).await.status(), 202);
    let r = app.send(&batch).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "{retry}");
    // The other site has its own bucket.
    let r = app
        .events()
        .header("x-api-key", OTHER_KEY)
        .body(json!({"events": [page_load("s", "/", 5.0)]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    app.stop().await;
}

#[tokio::test]
async fn empty_batches_carrying_losses_are_rate_limited_too() {
    // Each batch costs at least one token, so a page holding the public key cannot add to
    // rum_sdk_dropped_events_total without limit by sending batches with no events.
    let (_db, app) = app_with(Opts {
        rate: 1.0,
        burst: 500.0,
        ..Opts::default()
    })
    .await;
    let batch = json!({"events": [], "dropped": {"queue": 1000}});
    let mut accepted = 0;
    loop {
        match app.send(&batch).await.status().as_u16() {
            202 => accepted += 1,
            429 => break,
            other => panic!("status {other} after {accepted} batches"),
        }
        assert!(accepted <= 520, "empty batches are not rate-limited");
    }
    // the burst, and what the bucket refilled (1/s) while they were sent
    assert!((500..=520).contains(&accepted), "{accepted}");
    app.stop().await;
}

#[tokio::test]
async fn retries_with_the_same_event_id_are_stored_once() {
    let (_db, app) = app().await;
    let mut ev = page_load("s", "https://shop.example.com/a", 700.0);
    ev["event_id"] = json!("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    let body = json!({"events": [ev.clone(), ev]});
    let b: Value = app.send(&body).await.json().await.unwrap();
    assert_eq!(b["accepted"], 2);
    let b: Value = app.send(&body).await.json().await.unwrap();
    assert_eq!(b["accepted"], 2);
    assert_eq!(b["duplicates"], 2, "{b}");
    let pages = app.stats("pages").await;
    assert_eq!(pages["pages"][0]["samples"], 1, "{pages}");
    // A batch sent again as a whole (a retry whose first answer was lost) is counted in the metrics once.
    let mut a = page_load("s", "https://shop.example.com/b", 300.0);
    a["event_id"] = json!("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60");
    let mut b2 = page_load("s", "https://shop.example.com/b", 400.0);
    b2["event_id"] = json!("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61");
    let batch = json!({"events": [a, b2], "batch_id": "7c0e2d1a-0000-4000-8000-000000000001"});
    for _ in 0..3 {
        let r: Value = app.send(&batch).await.json().await.unwrap();
        assert_eq!(r["accepted"], 2, "{r}");
    }
    // The hide's beacon joins a batch whose answer was lost with new events, without a batch id: only the new
    // event is counted.
    let mut c = page_load("s", "https://shop.example.com/b", 500.0);
    c["event_id"] = json!("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a62");
    let joined = json!({"events": [batch["events"][0].clone(), c, batch["events"][1].clone()]});
    let r: Value = app.send(&joined).await.json().await.unwrap();
    assert_eq!(
        (r["accepted"].as_u64(), r["duplicates"].as_u64()),
        (Some(3), Some(2)),
        "{r}"
    );
    let metrics = app.metrics().await;
    let count = |page: &str| {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("rum_page_load_seconds_count{")
                    && l.contains(&format!("page=\"{page}\""))
            })
            .unwrap_or_else(|| panic!("no page load count for {page} in\n{metrics}"));
        line.rsplit(' ').next().unwrap().to_string()
    };
    assert_eq!(count("/b"), "3");
    // The same event twice in one batch is counted once, too.
    assert_eq!(count("/a"), "1");
    app.stop().await;
}

#[tokio::test]
async fn dropped_counts_by_reason_a_number_as_unspecified_and_garbage_with_a_warning() {
    let (_db, app) = app().await;
    let ev = |s: &str| page_load(s, "https://shop.example.com/", 500.0);
    let a = &app;
    let send = |body: Value| async move {
        let r = a.send(&body).await;
        assert_eq!(r.status(), 202);
        r.json::<Value>().await.unwrap()
    };
    // As rum-sdk.js sends it now: an object by reason (unknown reasons are `other`).
    let b = send(json!({"events": [ev("d1")], "batch_id": "b-1",
                        "dropped": {"queue": 4, "outbox": 20, "retry": 3, "disk": 2}}))
    .await;
    assert_eq!(b["accepted"], 1, "{b}");
    assert!(b.get("warnings").is_none(), "{b}");
    // As older SDKs send it: a number. And a batch of no events that only reports losses.
    send(json!({"events": [ev("d2")], "batch_id": "b-2", "dropped": 7})).await;
    send(json!({"events": [], "dropped": {"queue": 1}})).await;
    let m = app.metrics().await;
    let dropped = |reason: &str| {
        metric_value(
            &m,
            &format!(r#"rum_sdk_dropped_events_total{{site="shop",reason="{reason}"}}"#),
        )
    };
    assert_eq!(dropped("queue"), Some(5.0), "{m}");
    assert_eq!(dropped("outbox"), Some(20.0));
    assert_eq!(dropped("retry"), Some(3.0));
    assert_eq!(dropped("other"), Some(2.0));
    assert_eq!(dropped("unspecified"), Some(7.0));
    assert!(
        m.contains("# TYPE rum_sdk_dropped_events_total counter"),
        "{m}"
    );

    // Unusable values never fail the batch: the field is ignored, a warning without index names it.
    for (garbage, says) in [
        (json!(-3), "dropped: -3 is not a whole number"),
        (json!(2.5), "dropped: 2.5 is not a whole number"),
        (json!("12"), "dropped: a string is not"),
        (json!([1, 2]), "dropped: an array is not"),
        (json!({"queue": -1}), "dropped.queue: the value is not"),
        (
            json!({"retry": 5_000_000}),
            "dropped.retry: more than 1000000 events",
        ),
    ] {
        let b = send(json!({"events": [ev("g")], "dropped": garbage})).await;
        assert_eq!(b["accepted"], 1, "{b}");
        let w = &b["warnings"][0];
        assert!(w.get("index").is_none(), "{b}");
        assert!(w["warning"].as_str().unwrap().starts_with(says), "{b}");
    }
    let many: serde_json::Map<String, Value> =
        (0..10_000).map(|i| (format!("r{i}"), json!(1))).collect();
    let b = send(json!({"events": [ev("g")], "dropped": many})).await;
    assert_eq!(
        b["warnings"][0]["warning"],
        "dropped: more than 16 reasons; dropped ignored"
    );
    let m = app.metrics().await;
    assert_eq!(dropped_total(&m), 37.0, "garbage counted nothing:\n{m}");
    assert_eq!(
        metric_value(
            &m,
            r#"rum_events_total{site="shop",event_type="page_load",page="/"}"#
        ),
        Some(9.0)
    );

    // An unusable batch_id: a warning, the batch processed (and not recognised when sent again).
    for bad in [
        json!(""),
        json!("x".repeat(65)),
        json!("has space"),
        json!(17),
    ] {
        let body = json!({"events": [ev("i")], "batch_id": bad});
        for _ in 0..2 {
            let r = app.send(&body).await;
            assert_eq!(r.status(), 202);
            let b: Value = r.json().await.unwrap();
            assert!(
                b["warnings"][0]["warning"].as_str().unwrap().starts_with(
                    "batch_id: must be a string of 1 to 64 printable ASCII characters"
                ),
                "{b}"
            );
        }
    }
    let m = app.metrics().await;
    assert!(!m.contains("rum_batches_duplicate_total{"), "{m}");
    app.stop().await;
}

fn dropped_total(m: &str) -> f64 {
    m.lines()
        .filter(|l| l.starts_with("rum_sdk_dropped_events_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn operational_endpoints() {
    let (_db, app) = app().await;
    let get = |p: &str| app.client.get(app.url(p)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let r = get("/rum-sdk.js").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/javascript"));
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(!r.bytes().await.unwrap().is_empty());
    let r = app
        .client
        .get(app.url("/rum-sdk.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = app
        .client
        .head(app.url("/rum-sdk.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(get("/nope").await.unwrap().status(), 404);
    sdk_encodings_and_versioned_url(&app).await;
    assert_eq!(
        app.client
            .get(app.url("/v1/events"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_pass_promtool() {
    let (_db, app) = app().await;
    app.send(&json!({"events": [
        page_load("s", "https://shop.example.com/products/9", 1300.0),
        {"type": "api_call", "session_id": "s", "timestamp": now_ms(), "page": {"url": "https://shop.example.com/"},
         "api": {"method": "POST", "endpoint": "https://api.example.com/orders/77", "duration": 120, "status": 503}},
        {"type": "error", "session_id": "s", "timestamp": now_ms(), "page": {"url": "https://shop.example.com/"},
         "error": {"message": "TypeError: x is undefined", "stack": "at y"}},
        {"type": "web_vital", "session_id": "s", "timestamp": now_ms(), "name": "CLS", "value": 0.12,
         "page": {"url": "https://shop.example.com/"}},
    ]}))
    .await;
    let text = app.metrics().await;
    assert!(text.contains(r#"rum_api_call_duration_seconds_count{site="shop",endpoint="POST api.example.com/orders/:id",status="5xx"} 1"#), "{text}");
    assert!(text.contains(r#"rum_errors_total{site="shop",page="/"} 1"#));
    assert!(
        text.contains("vantage_ingest_store_"),
        "store metrics registered"
    );
    let (ok, printed) = vantage_testkit::promtool::check_metrics(&text);
    assert!(ok, "promtool: {printed}");
    // Prometheus itself asks for OpenMetrics.
    let r = app
        .client
        .get(app.url("/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().ends_with("# EOF\n"));
    app.stop().await;
}

#[tokio::test]
async fn series_stay_bounded_under_100k_distinct_urls() {
    let (_db, app) = app_with(Opts {
        label_budget: 50,
        ..Opts::default()
    })
    .await;
    // 100,000 distinct URLs whose paths are words (not ids), so templating alone cannot fold them.
    for batch in 0..200 {
        let events: Vec<Value> = (0..500)
            .map(|i| {
                let n = batch * 500 + i;
                page_load(
                    "s",
                    &format!("https://shop.example.com/p{n}x/item-{}", n % 7),
                    100.0,
                )
            })
            .collect();
        let r = app.send(&json!({ "events": events })).await;
        let status = r.status();
        assert_eq!(status, 202, "batch {batch}: {}", r.text().await.unwrap());
    }
    let text = app.metrics().await;
    let series = |name: &str| text.lines().filter(|l| l.starts_with(name)).count();
    assert_eq!(series("rum_events_total{"), 51, "50 pages + other");
    assert_eq!(series("rum_page_load_seconds_count{"), 51);
    assert!(
        text.contains(r#"rum_events_total{site="shop",event_type="page_load",page="other"} 99950"#)
    );
    app.stop().await;
}

/// Origins are parsed as scheme://host[:port] before wildcard matching: these used to match
/// `https://*.shop.example.com` and be echoed in Access-Control-Allow-Origin (issue #17).
#[tokio::test]
async fn origins_with_path_query_fragment_or_userinfo_are_refused() {
    let (_db, app) = app().await;
    let body = json!({"events": [page_load("s", "/", 100.0)]}).to_string();
    for hostile in [
        "https://evil.com/.shop.example.com",
        "https://evil.com#.shop.example.com",
        "https://evil.com?.shop.example.com",
        "https://evil.com?x=1&.shop.example.com",
        "https://evil.com\\.shop.example.com",
        "https://evil.com .shop.example.com",
        "https://evil.com@eu.shop.example.com",
        "https://eu.shop.example.com/",
        "https://eu.shop.example.com:443/x",
    ] {
        let r = app
            .events()
            .header("x-api-key", KEY)
            .header("origin", hostile)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{hostile}");
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{hostile} echoed"
        );
        let pre = app
            .client
            .request(reqwest::Method::OPTIONS, app.url("/v1/events"))
            .header("origin", hostile)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(pre.status(), 403, "{hostile}");
        assert!(pre.headers().get("access-control-allow-origin").is_none());
    }
    let r = app
        .events()
        .header("x-api-key", KEY)
        .header("origin", "https://eu.shop.example.com")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://eu.shop.example.com"
    );
    app.stop().await;
}

/// NUL, CR, TAB, ESC and DEL in page and endpoint URLs are stored as received but never reach /metrics raw.
#[tokio::test]
async fn control_characters_never_reach_metric_labels() {
    let (_db, app) = app().await;
    let url = "https://shop.example.com/a\u{0}b/c\rd/e\tf/g\u{1b}[31m/h\u{7f}";
    let call = json!({
        "type": "api_call", "session_id": "s-ctl", "timestamp": now_ms(), "page": {"url": url},
        "api": {"method": "GET", "endpoint": "https://api.example.com/x\u{0}y\u{1b}", "duration": 12, "status": 200}
    });
    let r = app
        .send(&json!({"events": [page_load("s-ctl", url, 100.0), call]}))
        .await;
    assert_eq!(r.status(), 202);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["accepted"], 2, "{answer}");
    let m = app.metrics().await;
    let raw: Vec<char> = m.chars().filter(|c| c.is_control() && *c != '\n').collect();
    assert!(
        raw.is_empty(),
        "raw control characters in /metrics: {raw:?}"
    );
    assert!(
        m.contains(r#"page="/a%00b/c%0Dd/e%09f/g%1B[31m/h%7F""#),
        "{m}"
    );
    assert!(m.contains("api.example.com/x%00y%1B"), "{m}");
    app.stop().await;
}

/// `/rum-sdk.js` in each encoding a browser may ask for, each with its own ETag, and the versioned immutable URL.
async fn sdk_encodings_and_versioned_url(app: &TestApp) {
    use std::io::Read;
    let plain = reqwest::Client::builder().no_gzip().build().unwrap();
    let fetch = |path: String, accept: &'static str| {
        let req = plain.get(app.url(&path));
        let req = if accept.is_empty() {
            req
        } else {
            req.header("accept-encoding", accept)
        };
        async move { req.send().await.unwrap() }
    };
    let identity = fetch("/rum-sdk.js".into(), "").await;
    assert_eq!(identity.headers()["vary"], "Accept-Encoding");
    assert!(identity.headers().get("content-encoding").is_none());
    let link = identity.headers()["link"].to_str().unwrap().to_string();
    let sdk = identity.bytes().await.unwrap();

    let br = fetch("/rum-sdk.js".into(), "gzip, deflate, br").await;
    assert_eq!(br.headers()["content-encoding"], "br");
    let br_tag = br.headers()["etag"].to_str().unwrap().to_string();
    let body = br.bytes().await.unwrap();
    let mut out = Vec::new();
    brotli::Decompressor::new(&body[..], 4096)
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, sdk);
    assert!(
        body.len() * 2 < sdk.len(),
        "{} brotli bytes for {}",
        body.len(),
        sdk.len()
    );

    let gz = fetch("/rum-sdk.js".into(), "gzip").await;
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let gz_tag = gz.headers()["etag"].to_str().unwrap().to_string();
    let body = gz.bytes().await.unwrap();
    out.clear();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, sdk);
    assert_ne!(gz_tag, br_tag);

    // A cached brotli copy revalidates as brotli; its tag is not the gzip copy's.
    let r = plain
        .get(app.url("/rum-sdk.js"))
        .header("accept-encoding", "br")
        .header("if-none-match", format!("W/{br_tag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = plain
        .get(app.url("/rum-sdk.js"))
        .header("accept-encoding", "gzip")
        .header("if-none-match", &br_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The versioned URL the stable one names: immutable, same content.
    let versioned = link
        .strip_prefix('<')
        .and_then(|l| l.split_once('>'))
        .map(|(u, _)| u.to_string())
        .unwrap();
    assert!(versioned.starts_with("/rum-sdk.") && versioned.len() > "/rum-sdk..js".len());
    let v = fetch(versioned.clone(), "").await;
    assert_eq!(v.status(), 200);
    assert!(v.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(v.bytes().await.unwrap(), sdk);
    let other = fetch("/rum-sdk.0000000000000000.js".into(), "").await;
    assert_eq!(other.status(), 404);
}
