//! Releases, source maps and error groups end to end, on SQLite and PostgreSQL: a real bundle built by
//! esbuild from `tests/fixtures/shop/src` (`--bundle --minify --sourcemap`), a real V8 stack from running it
//! under node, its map uploaded through the HTTP API with an admin token, and the stats showing the original
//! `src/cart.js:42` frame. Needs `js-sdk/node_modules` (`cd js-sdk && npm ci`; scripts/test.sh does it) and
//! `node`.

#[macro_use]
mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use support::*;

both!(
    uploaded_map_symbolicates_and_groups_errors,
    upload_limits_and_bad_maps_are_clear_errors,
);

const RELEASE: &str = "shop@1.4.2";
const PREFIX: &str = "https://shop.example.com/assets/";
const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

/// The shop's bundle: `app.min.js` and `app.min.js.map` in a temp dir, built now by esbuild.
struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn build() -> Bundle {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let esbuild = root.join("../js-sdk/node_modules/.bin/esbuild");
        assert!(
            esbuild.exists(),
            "{} is missing: run `cd js-sdk && npm ci` (scripts/test.sh does)",
            esbuild.display()
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        for f in ["cart.js", "app.js"] {
            std::fs::copy(
                root.join("tests/fixtures/shop/src").join(f),
                dir.path().join("src").join(f),
            )
            .unwrap();
        }
        let out = std::process::Command::new(&esbuild)
            .current_dir(dir.path())
            .args([
                "src/app.js",
                "--bundle",
                "--minify",
                "--sourcemap",
                "--format=esm",
                "--outfile=app.min.js",
                "--log-level=warning",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "esbuild: {out:?}");
        Bundle { dir }
    }

    fn map(&self) -> PathBuf {
        self.dir.path().join("app.min.js.map")
    }

    /// The stack V8 (node) gives for the failing call, with the bundle's file URL replaced by where the
    /// shop serves it.
    fn v8_stack(&self) -> String {
        let run = self.dir.path().join("run.mjs");
        std::fs::write(
            &run,
            "import { main } from './app.min.js';\nconsole.log = () => {};\ntry { main([{ sku: 'a', price: 1, details: { sku: 'x' } }, { sku: 'b', price: 2 }]); }\ncatch (e) { process.stdout.write(e.stack); }\n",
        )
        .unwrap();
        let out = std::process::Command::new("node")
            .arg(&run)
            .output()
            .expect("node runs (scripts/test.sh installs nodejs)");
        assert!(out.status.success(), "node: {out:?}");
        let stack = String::from_utf8(out.stdout).unwrap();
        let file_url = format!("file://{}/", self.dir.path().display());
        let stack = stack.replace(&file_url, PREFIX);
        assert!(
            stack.starts_with("TypeError: Cannot read properties of undefined (reading 'sku')")
                && stack.contains(&format!("({PREFIX}app.min.js:1:")),
            "{stack}"
        );
        stack
    }
}

fn error_event(session: &str, release: Option<&str>, stack: &str) -> Value {
    let mut e = json!({
        "type": "error", "session_id": session, "timestamp": now_ms(), "user_agent": CHROME,
        "page": {"url": "https://shop.example.com/cart?step=2"},
        "error": {"message": "Uncaught TypeError: Cannot read properties of undefined (reading 'sku')",
                  "stack": stack, "source": format!("{PREFIX}app.min.js:1:359"), "kind": "error"}
    });
    if let Some(r) = release {
        e["release"] = json!(r);
    }
    e
}

async fn upload(app: &TestApp, token: Option<&str>, map: &[u8], query: &str) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/v1/admin/sourcemaps?{query}")))
        .body(map.to_vec());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

fn upload_query() -> String {
    format!(
        "site=shop&release={}&url_prefix={}&name=app.min.js.map",
        urlencode(RELEASE),
        urlencode(PREFIX)
    )
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    let r = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

async fn uploaded_map_symbolicates_and_groups_errors(backend: Backend) {
    let bundle = Bundle::build();
    let stack = bundle.v8_stack();
    let map = std::fs::read(bundle.map()).unwrap();
    let db = TestDb::new(backend).await;
    let app = spawn_app(&db, &Opts::default()).await;

    // Only an admin token may upload: none is 401, a read token 403.
    assert_eq!(
        upload(&app, None, &map, &upload_query()).await.status(),
        401
    );
    let r = upload(&app, Some(&admin_token("read")), &map, &upload_query()).await;
    assert_eq!(r.status(), 403);
    let r = upload(&app, Some(&admin_token("admin")), &map, &upload_query()).await;
    assert_eq!(r.status(), 201);
    let stored: Value = r.json().await.unwrap();
    assert_eq!(stored["url"], format!("{PREFIX}app.min.js"));
    assert_eq!(stored["replaced"], false);

    // The same error twice (two sessions) in the release; once more in a release without maps.
    let r = app
        .send(&json!({"events": [
            error_event("s1", Some(RELEASE), &stack),
            error_event("s2", Some(RELEASE), &stack),
            error_event("s3", Some("shop@0.9.0"), &stack),
        ]}))
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap()["accepted"], 3);

    let answer = app.stats("errors").await;
    // The per-route shape stays.
    assert_eq!(answer["errors"][0]["route"], "/cart", "{answer}");
    assert_eq!(answer["errors"][0]["errors"], 3);
    let groups = answer["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{answer}");
    let g = &groups[0];
    assert_eq!(g["count"], 2, "{g}");
    assert_eq!(g["sessions"], 2);
    assert_eq!(g["type"], "TypeError");
    assert_eq!(
        g["message"],
        "Cannot read properties of undefined (reading <str>)"
    );
    assert_eq!(g["releases"], json!([RELEASE]));
    assert_eq!(g["top_pages"], json!([{"value": "/cart", "count": 2}]));
    assert_eq!(g["top_browsers"], json!([{"value": "Chrome", "count": 2}]));
    assert!(g["first_seen_ms"].as_i64().unwrap() <= g["last_seen_ms"].as_i64().unwrap());
    let sample = g["sample"]["stack"].as_str().unwrap();
    let frames: Vec<&str> = sample.lines().map(str::trim).collect();
    assert_eq!(
        frames[0],
        "TypeError: Cannot read properties of undefined (reading 'sku')"
    );
    // src/cart.js line 42: `const sku = product.details.sku.toUpperCase();`, at `sku`.
    assert_eq!(frames[1], "at addToCart (src/cart.js:42:31)", "{sample}");
    assert_eq!(frames[2], "at onBuyClick (src/app.js:7:17)", "{sample}");
    assert!(
        frames[3].starts_with("at main (src/app.js:13:5)"),
        "{sample}"
    );
    // The release without maps keeps the minified frames, and is its own group (another top frame).
    let other = &groups[1];
    assert_eq!(other["count"], 1);
    assert_eq!(other["releases"], json!(["shop@0.9.0"]));
    assert!(
        other["sample"]["stack"]
            .as_str()
            .unwrap()
            .contains(&format!("({PREFIX}app.min.js:1:")),
        "{other}"
    );

    // The group's occurrences, newest first, with their symbolicated stacks.
    let id = g["id"].as_str().unwrap();
    let occ = get_json(
        &app,
        &format!("/v1/stats/errors/{id}?site=shop&window=1h"),
        &admin_token("read"),
    )
    .await;
    let list = occ["occurrences"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{occ}");
    let mut sessions: Vec<&str> = list
        .iter()
        .map(|o| o["session_id"].as_str().unwrap())
        .collect();
    sessions.sort();
    assert_eq!(sessions, ["s1", "s2"]);
    assert_eq!(list[0]["release"], RELEASE);
    assert_eq!(list[0]["page"], "https://shop.example.com/cart");
    assert_eq!(list[0]["browser"], "Chrome");
    assert!(list[0]["stack"]
        .as_str()
        .unwrap()
        .contains("src/cart.js:42:31"));
    let r = app
        .client
        .get(app.url("/v1/stats/errors/nothex?site=shop"))
        .bearer_auth(admin_token("read"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Two groups are new; the same errors again add none.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("rum_error_groups_new_total{site=\"shop\"} 2"),
        "{metrics}"
    );
    let r = app
        .send(&json!({"events": [error_event("s4", Some(RELEASE), &stack)]}))
        .await;
    assert_eq!(r.status(), 202);
    assert!(app
        .metrics()
        .await
        .contains("rum_error_groups_new_total{site=\"shop\"} 2"));

    // Listed without content; a re-upload replaces; delete removes the release's maps.
    let r = upload(&app, Some(&admin_token("admin")), &map, &upload_query()).await;
    assert_eq!(r.json::<Value>().await.unwrap()["replaced"], true);
    let listed = get_json(
        &app,
        &format!(
            "/v1/admin/sourcemaps?site=shop&release={}",
            urlencode(RELEASE)
        ),
        &admin_token("admin"),
    )
    .await;
    let maps = listed["maps"].as_array().unwrap();
    assert_eq!(maps.len(), 1, "{listed}");
    assert_eq!(maps[0]["name"], "app.min.js.map");
    assert_eq!(maps[0]["bytes"], map.len());
    assert!(maps[0]["uploaded_ms"].as_i64().unwrap() > 0);
    assert!(!listed.to_string().contains("mappings"), "{listed}");
    let r = app
        .client
        .get(app.url("/v1/admin/sourcemaps?site=shop"))
        .bearer_auth(admin_token("read"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .client
        .delete(app.url(&format!(
            "/v1/admin/sourcemaps?site=shop&release={}",
            urlencode(RELEASE)
        )))
        .bearer_auth(admin_token("admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["deleted"], 1);

    // The CLI: one line per map; a refused token is an error naming the file, without the token.
    let cli = |token: String| {
        let (addr, map) = (app.addr.clone(), bundle.map());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_vantage-ingest"))
                .args(["sourcemaps", "upload", "--url", &addr, "--site", "shop"])
                .args(["--release", RELEASE, "--url-prefix", PREFIX])
                .arg(map)
                .env("VANTAGE_TOKEN", token)
                .output()
                .unwrap()
        })
    };
    let out = cli(admin_token("admin")).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains("app.min.js.map -> https://shop.example.com/assets/app.min.js"),
        "{stdout}"
    );
    let read = admin_token("read");
    let out = cli(read.clone()).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "app.min.js.map: server answered 403 Forbidden: token scope does not allow this"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains(&read) && out.stdout.is_empty(), "{stderr}");
    app.stop().await;
}

async fn upload_limits_and_bad_maps_are_clear_errors(backend: Backend) {
    let db = TestDb::new(backend).await;
    let o = Opts {
        extra: "sourcemaps:\n  max_bytes: 4096\n  max_per_release: 2\n".into(),
        ..Opts::default()
    };
    let app = spawn_app(&db, &o).await;
    let admin = admin_token("admin");
    let small = br#"{"version":3,"sources":["src/a.js"],"names":[],"mappings":"AAAA"}"#;
    let q = |name: &str, release: &str| {
        format!(
            "site=shop&release={release}&url_prefix={}&name={name}",
            urlencode(PREFIX)
        )
    };
    async fn error_of(r: reqwest::Response) -> (u16, String) {
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        (status, v["error"].as_str().unwrap_or_default().to_string())
    }
    // Too large: 413 naming the limit, before or after gzip.
    let big = format!(
        r#"{{"version":3,"sources":["a"],"names":[],"mappings":"AAAA","x":"{}"}}"#,
        "y".repeat(5000)
    );
    let (status, e) =
        error_of(upload(&app, Some(&admin), big.as_bytes(), &q("a.js.map", "r1")).await).await;
    assert_eq!(status, 413);
    assert!(
        e.contains("larger than 4096 bytes (sourcemaps.max_bytes"),
        "{e}"
    );
    // Not a map: 400 saying why.
    let (status, e) =
        error_of(upload(&app, Some(&admin), b"{\"version\":3", &q("a.js.map", "r1")).await).await;
    assert_eq!(status, 400);
    assert!(e.starts_with("not a source map"), "{e}");
    let (status, e) = error_of(
        upload(
            &app,
            Some(&admin),
            small,
            "site=shop&release=r1&name=a.js.map",
        )
        .await,
    )
    .await;
    assert_eq!((status, e.as_str()), (400, "missing ?url_prefix="));
    let (status, e) = error_of(
        upload(
            &app,
            Some(&admin),
            small,
            &q("a.js.map", "r1").replace("site=shop", "site=nope"),
        )
        .await,
    )
    .await;
    assert_eq!((status, e.as_str()), (404, "unknown site `nope`"));
    // Two maps per release; a third is refused, a replacement is not.
    for name in ["a.js.map", "b.js.map", "a.js.map"] {
        assert_eq!(
            upload(&app, Some(&admin), small, &q(name, "r1"))
                .await
                .status(),
            201
        );
    }
    let (status, e) = error_of(upload(&app, Some(&admin), small, &q("c.js.map", "r1")).await).await;
    assert_eq!(status, 413);
    assert!(
        e.contains("the limit is 2 (sourcemaps.max_per_release)"),
        "{e}"
    );
    // Another release has its own count.
    assert_eq!(
        upload(&app, Some(&admin), small, &q("c.js.map", "r2"))
            .await
            .status(),
        201
    );
    // A release too long for events is refused here too.
    let (status, e) =
        error_of(upload(&app, Some(&admin), small, &q("a.js.map", &"r".repeat(201))).await).await;
    assert_eq!(status, 400);
    assert!(e.contains("at most 200 bytes"), "{e}");
    // An error event whose stack points into a stored map that maps nothing there keeps its frames.
    let r = app
        .send(&json!({"events": [{
            "type": "error", "session_id": "s", "timestamp": now_ms(), "release": "r1",
            "error": {"message": "boom", "stack": format!("Error: boom\n    at f ({PREFIX}a.js:9:9)")}
        }]}))
        .await;
    assert_eq!(r.status(), 202);
    let groups = app.stats("errors").await["groups"].clone();
    assert_eq!(
        groups[0]["sample"]["stack"],
        format!("Error: boom\n    at f ({PREFIX}a.js:9:9)")
    );
    app.stop().await;
}
