//! `vantage-demo-api`: runs the demo API (token login, assignments CRUD, fault switches) for the README demo.
//!
//! ```text
//! vantage-demo-api [--listen 127.0.0.1:9490] [--username synthetic] [--token-ttl 300]
//! ```
//! Secrets come from the environment: `DEMO_API_PASSWORD` (default `demo-password`), `DEMO_API_TOKEN_SECRET`
//! (default: random per start), `DEMO_API_SERVICE_SECRET` (accept HS256 service tokens signed with it),
//! `DEMO_API_SERVICE_RS256_PUBLIC_KEY` (a PEM file: accept RS256 service tokens). Faults are switched with
//! `curl -X POST localhost:9490/_faults -d '{"wrong_title":true}' -H 'content-type: application/json'`.

use std::net::TcpListener;
use std::time::Duration;
use vantage_testkit::demo_api::{spawn_on, DemoApiConfig};

const USAGE: &str =
    "usage: vantage-demo-api [--listen ADDR] [--username NAME] [--token-ttl SECONDS]";

fn main() {
    if let Err(e) = run() {
        eprintln!("vantage-demo-api: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut listen = "127.0.0.1:9490".to_string();
    let mut config = DemoApiConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--listen" => listen = value()?,
            "--username" => config.username = value()?,
            "--token-ttl" => {
                let v = value()?;
                let secs = v
                    .parse()
                    .map_err(|_| format!("--token-ttl {v:?}: expected seconds"))?;
                config.token_ttl = Duration::from_secs(secs);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(p) = env("DEMO_API_PASSWORD") {
        config.password = p;
    }
    if let Some(s) = env("DEMO_API_TOKEN_SECRET") {
        config.token_secret = s;
    }
    config.service_hs256_secret = env("DEMO_API_SERVICE_SECRET");
    if let Some(path) = env("DEMO_API_SERVICE_RS256_PUBLIC_KEY") {
        let pem = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        config.service_rs256_public_pem = Some(pem);
    }
    let listener =
        TcpListener::bind(&listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let api = spawn_on(listener, config).map_err(|e| e.to_string())?;
    println!("vantage-demo-api listening on {}", api.url());
    api.wait();
    Ok(())
}
