//! The demo API: token login (JWT), assignment CRUD behind bearer auth, and fault switches for workflow tests.
//!
//! Routes:
//! - `POST /auth/token` `{username, password}` -> `200 {access_token, token_type, expires_in}` (HS256, signed with
//!   the API's own secret) or `401`.
//! - `POST /v1/assignments` `{title, assignee}` -> `201 {id, title, assignee}` with a `Location` header.
//! - `GET /v1/assignments/{id}` -> `200 {id, title, assignee}` or `404`; `DELETE` -> `204` or `404`.
//! - `GET /healthz` -> `200 ok`.
//! - `GET /_faults` / `POST /_faults` (a whole [`Faults`] as JSON; `{}` clears every fault).
//!
//! Every `/v1` route takes `Authorization: Bearer <jwt>`: either a token from `/auth/token`, or a service token
//! minted by a client (HS256 with [`DemoApiConfig::service_hs256_secret`], RS256 / ES256 verified with the
//! configured public keys; `aud` must be [`DemoApiConfig::service_audience`]). Expired tokens get
//! `401 {"error":"token expired"}`.

use actix_web::dev::ServerHandle;
use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Issuer of the API's own user tokens.
const ISSUER: &str = "vantage-demo-api";

/// How the demo API authenticates callers.
#[derive(Debug, Clone)]
pub struct DemoApiConfig {
    /// The one accepted login.
    pub username: String,
    pub password: String,
    /// HS256 secret the API signs its user tokens with.
    pub token_secret: String,
    /// Lifetime (`exp - iat`) of issued user tokens.
    pub token_ttl: Duration,
    /// Shared HS256 secret for service tokens minted by clients.
    pub service_hs256_secret: Option<String>,
    /// PEM public key (SPKI or PKCS#1) for RS256 service tokens.
    pub service_rs256_public_pem: Option<String>,
    /// PEM public key (SPKI) for ES256 service tokens.
    pub service_es256_public_pem: Option<String>,
    /// Required `aud` claim of service tokens.
    pub service_audience: String,
}

impl Default for DemoApiConfig {
    fn default() -> Self {
        Self {
            username: "synthetic".into(),
            password: "demo-password".into(),
            token_secret: uuid::Uuid::new_v4().to_string(),
            token_ttl: Duration::from_secs(300),
            service_hs256_secret: None,
            service_rs256_public_pem: None,
            service_es256_public_pem: None,
            service_audience: "demo".into(),
        }
    }
}

/// Endpoints a delay can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Token,
    Create,
    Read,
    Delete,
}

/// A delay before one endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowFault {
    pub endpoint: Endpoint,
    pub delay_ms: u64,
}

/// Faults switchable at run time (through [`DemoApi`] or `POST /_faults`). The default is no fault.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delay one endpoint.
    pub slow: Option<SlowFault>,
    /// `POST /v1/assignments` answers 500 without storing anything.
    pub fail_create: bool,
    /// `GET /v1/assignments/{id}` answers with the title `wrong`.
    pub wrong_title: bool,
    /// `/auth/token` issues tokens that have already expired.
    pub expired_tokens: bool,
}

/// A stored assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub id: u64,
    pub title: String,
    pub assignee: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct UserClaims {
    sub: String,
    iss: String,
    iat: u64,
    exp: u64,
}

struct AcceptedKey {
    key: DecodingKey,
    validation: Validation,
}

struct State {
    config: DemoApiConfig,
    accepted: Vec<AcceptedKey>,
    faults: Mutex<Faults>,
    store: Mutex<BTreeMap<u64, Assignment>>,
    next_id: AtomicU64,
    requests: AtomicU64,
}

impl State {
    fn new(config: DemoApiConfig) -> std::io::Result<Self> {
        let invalid = |what: &str, e: jsonwebtoken::errors::Error| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {e}"))
        };
        let strict = |alg: Algorithm| {
            let mut v = Validation::new(alg);
            v.leeway = 0;
            v
        };
        let mut user = strict(Algorithm::HS256);
        user.set_issuer(&[ISSUER]);
        user.validate_aud = false;
        let mut accepted = vec![AcceptedKey {
            key: DecodingKey::from_secret(config.token_secret.as_bytes()),
            validation: user,
        }];
        let service = |alg: Algorithm| {
            let mut v = strict(alg);
            v.set_audience(&[&config.service_audience]);
            v.set_required_spec_claims(&["exp", "aud"]);
            v
        };
        if let Some(secret) = &config.service_hs256_secret {
            accepted.push(AcceptedKey {
                key: DecodingKey::from_secret(secret.as_bytes()),
                validation: service(Algorithm::HS256),
            });
        }
        if let Some(pem) = &config.service_rs256_public_pem {
            accepted.push(AcceptedKey {
                key: DecodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|e| invalid("service RS256 public key", e))?,
                validation: service(Algorithm::RS256),
            });
        }
        if let Some(pem) = &config.service_es256_public_pem {
            accepted.push(AcceptedKey {
                key: DecodingKey::from_ec_pem(pem.as_bytes())
                    .map_err(|e| invalid("service ES256 public key", e))?,
                validation: service(Algorithm::ES256),
            });
        }
        Ok(Self {
            config,
            accepted,
            faults: Mutex::new(Faults::default()),
            store: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            requests: AtomicU64::new(0),
        })
    }

    fn faults(&self) -> Faults {
        self.faults.lock().unwrap().clone()
    }

    async fn maybe_delay(&self, endpoint: Endpoint) {
        if let Some(slow) = self.faults().slow {
            if slow.endpoint == endpoint {
                actix_web::rt::time::sleep(Duration::from_millis(slow.delay_ms)).await;
            }
        }
    }

    /// Checks the bearer token; the error is the reason for the 401.
    fn authorize(&self, req: &HttpRequest) -> Result<(), &'static str> {
        let value = req
            .headers()
            .get(header::AUTHORIZATION)
            .ok_or("missing bearer token")?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or("malformed Authorization header")?;
        let token_header = jsonwebtoken::decode_header(token).map_err(|_| "malformed token")?;
        let mut expired = false;
        for k in self
            .accepted
            .iter()
            .filter(|k| k.validation.algorithms.contains(&token_header.alg))
        {
            match jsonwebtoken::decode::<serde_json::Value>(token, &k.key, &k.validation) {
                Ok(_) => return Ok(()),
                Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => expired = true,
                Err(_) => {}
            }
        }
        Err(if expired {
            "token expired"
        } else {
            "invalid token"
        })
    }
}

fn unauthorized(reason: &str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .json(serde_json::json!({ "error": reason }))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn token(state: web::Data<State>, body: web::Json<Login>) -> HttpResponse {
    state.requests.fetch_add(1, Ordering::Relaxed);
    state.maybe_delay(Endpoint::Token).await;
    if body.username != state.config.username || body.password != state.config.password {
        return HttpResponse::Unauthorized()
            .json(serde_json::json!({ "error": "bad credentials" }));
    }
    let iat = now_secs();
    let ttl = state.config.token_ttl.as_secs();
    // An expired token must be past any verifier's leeway, so it expired well before now.
    let (iat, exp) = if state.faults().expired_tokens {
        (iat.saturating_sub(ttl + 600), iat.saturating_sub(600))
    } else {
        (iat, iat + ttl)
    };
    let claims = UserClaims {
        sub: body.username.clone(),
        iss: ISSUER.into(),
        iat,
        exp,
    };
    match jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(state.config.token_secret.as_bytes()),
    ) {
        Ok(t) => HttpResponse::Ok().json(serde_json::json!({
            "access_token": t,
            "token_type": "Bearer",
            "expires_in": ttl,
        })),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

#[derive(Deserialize)]
struct NewAssignment {
    title: String,
    assignee: String,
}

async fn create(
    state: web::Data<State>,
    req: HttpRequest,
    body: web::Json<NewAssignment>,
) -> HttpResponse {
    state.requests.fetch_add(1, Ordering::Relaxed);
    if let Err(reason) = state.authorize(&req) {
        return unauthorized(reason);
    }
    state.maybe_delay(Endpoint::Create).await;
    if state.faults().fail_create {
        return HttpResponse::InternalServerError()
            .json(serde_json::json!({ "error": "internal error" }));
    }
    if body.title.trim().is_empty() {
        return HttpResponse::BadRequest().json(serde_json::json!({ "error": "title is empty" }));
    }
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let a = Assignment {
        id,
        title: body.title.clone(),
        assignee: body.assignee.clone(),
    };
    state.store.lock().unwrap().insert(id, a.clone());
    HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/assignments/{id}")))
        .json(a)
}

async fn read(state: web::Data<State>, req: HttpRequest, id: web::Path<u64>) -> HttpResponse {
    state.requests.fetch_add(1, Ordering::Relaxed);
    if let Err(reason) = state.authorize(&req) {
        return unauthorized(reason);
    }
    state.maybe_delay(Endpoint::Read).await;
    let found = state.store.lock().unwrap().get(&id).cloned();
    match found {
        Some(mut a) => {
            if state.faults().wrong_title {
                a.title = "wrong".into();
            }
            HttpResponse::Ok().json(a)
        }
        None => HttpResponse::NotFound().json(serde_json::json!({ "error": "no such assignment" })),
    }
}

async fn delete(state: web::Data<State>, req: HttpRequest, id: web::Path<u64>) -> HttpResponse {
    state.requests.fetch_add(1, Ordering::Relaxed);
    if let Err(reason) = state.authorize(&req) {
        return unauthorized(reason);
    }
    state.maybe_delay(Endpoint::Delete).await;
    match state.store.lock().unwrap().remove(&id) {
        Some(_) => HttpResponse::NoContent().finish(),
        None => HttpResponse::NotFound().json(serde_json::json!({ "error": "no such assignment" })),
    }
}

async fn get_faults(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(state.faults())
}

async fn set_faults(state: web::Data<State>, body: web::Json<Faults>) -> HttpResponse {
    *state.faults.lock().unwrap() = body.into_inner();
    HttpResponse::Ok().json(state.faults())
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(|| async { "ok" }))
        .route("/auth/token", web::post().to(token))
        .route("/v1/assignments", web::post().to(create))
        .route("/v1/assignments/{id}", web::get().to(read))
        .route("/v1/assignments/{id}", web::delete().to(delete))
        .route("/_faults", web::get().to(get_faults))
        .route("/_faults", web::post().to(set_faults));
}

/// A running demo API. Dropping it stops the server.
pub struct DemoApi {
    addr: SocketAddr,
    state: Arc<State>,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts the demo API on `127.0.0.1:0`. Panics if it cannot (tests only; see [`spawn_on`] for the binary).
pub fn spawn(config: DemoApiConfig) -> DemoApi {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    spawn_on(listener, config).expect("start demo API")
}

/// Starts the demo API on a bound listener, on its own thread and runtime so it is independent of the caller's
/// runtime (tests with a paused clock, synchronous callers).
pub fn spawn_on(listener: TcpListener, config: DemoApiConfig) -> std::io::Result<DemoApi> {
    let addr = listener.local_addr()?;
    let state = Arc::new(State::new(config)?);
    let data = web::Data::from(state.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("demo-api".into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server =
                    HttpServer::new(move || App::new().app_data(data.clone()).configure(routes))
                        .workers(1)
                        .disable_signals()
                        .shutdown_timeout(1)
                        .listen(listener);
                match server {
                    Ok(s) => {
                        let s = s.run();
                        let _ = tx.send(Ok(s.handle()));
                        let _ = s.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })
        })?;
    let handle = rx
        .recv()
        .map_err(|_| std::io::Error::other("demo API thread exited"))??;
    Ok(DemoApi {
        addr,
        state,
        handle,
        thread: Some(thread),
    })
}

impl DemoApi {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &DemoApiConfig {
        &self.state.config
    }

    /// Number of stored assignments.
    pub fn store_len(&self) -> usize {
        self.state.store.lock().unwrap().len()
    }

    pub fn assignments(&self) -> Vec<Assignment> {
        self.state.store.lock().unwrap().values().cloned().collect()
    }

    /// Requests served by the API routes (not `/_faults` or `/healthz`).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    pub fn faults(&self) -> Faults {
        self.state.faults()
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().unwrap() = faults;
    }

    pub fn clear_faults(&self) {
        self.set_faults(Faults::default());
    }

    pub fn set_slow(&self, endpoint: Endpoint, delay: Duration) {
        self.state.faults.lock().unwrap().slow = Some(SlowFault {
            endpoint,
            delay_ms: delay.as_millis() as u64,
        });
    }

    pub fn set_fail_create(&self, on: bool) {
        self.state.faults.lock().unwrap().fail_create = on;
    }

    pub fn set_wrong_title(&self, on: bool) {
        self.state.faults.lock().unwrap().wrong_title = on;
    }

    pub fn set_expired_tokens(&self, on: bool) {
        self.state.faults.lock().unwrap().expired_tokens = on;
    }

    /// Blocks until the server stops (for the `vantage-demo-api` binary).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DemoApi {
    fn drop(&mut self) {
        // Sends the stop command now; the server thread finishes on its own.
        drop(self.handle.stop(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A minimal blocking HTTP/1.1 client so these tests need no extra dependency.
    fn call(
        api: &DemoApi,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(api.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        if let Some(t) = auth {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        let body = body.unwrap_or("");
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    fn login(api: &DemoApi) -> (u16, String) {
        let (s, b) = call(
            api,
            "POST",
            "/auth/token",
            None,
            Some(r#"{"username":"synthetic","password":"demo-password"}"#),
        );
        let token = serde_json::from_str::<serde_json::Value>(&b)
            .ok()
            .and_then(|v| v["access_token"].as_str().map(String::from))
            .unwrap_or_default();
        (s, token)
    }

    #[test]
    fn crud_with_login_and_faults() {
        let api = spawn(DemoApiConfig::default());
        let (s, _) = call(
            &api,
            "POST",
            "/auth/token",
            None,
            Some(r#"{"username":"synthetic","password":"no"}"#),
        );
        assert_eq!(s, 401);
        let (s, token) = login(&api);
        assert_eq!(s, 200);
        let (s, _) = call(
            &api,
            "POST",
            "/v1/assignments",
            None,
            Some(r#"{"title":"t","assignee":"a"}"#),
        );
        assert_eq!(s, 401);
        let (s, b) = call(
            &api,
            "POST",
            "/v1/assignments",
            Some(&token),
            Some(r#"{"title":"t","assignee":"a"}"#),
        );
        assert_eq!(s, 201, "{b}");
        let id = serde_json::from_str::<serde_json::Value>(&b).unwrap()["id"]
            .as_u64()
            .unwrap();
        assert_eq!(api.store_len(), 1);
        let (s, b) = call(
            &api,
            "GET",
            &format!("/v1/assignments/{id}"),
            Some(&token),
            None,
        );
        assert_eq!((s, b.contains("\"title\":\"t\"")), (200, true), "{b}");

        api.set_wrong_title(true);
        let (_, b) = call(
            &api,
            "GET",
            &format!("/v1/assignments/{id}"),
            Some(&token),
            None,
        );
        assert!(b.contains("\"title\":\"wrong\""), "{b}");
        api.set_fail_create(true);
        let (s, _) = call(
            &api,
            "POST",
            "/v1/assignments",
            Some(&token),
            Some(r#"{"title":"t","assignee":"a"}"#),
        );
        assert_eq!(s, 500);
        assert_eq!(api.store_len(), 1);

        // Faults through the admin endpoint replace the whole set.
        let (s, _) = call(
            &api,
            "POST",
            "/_faults",
            None,
            Some(r#"{"expired_tokens":true}"#),
        );
        assert_eq!(s, 200);
        assert_eq!(
            api.faults(),
            Faults {
                expired_tokens: true,
                ..Default::default()
            }
        );
        let (_, expired) = login(&api);
        let (s, b) = call(
            &api,
            "GET",
            &format!("/v1/assignments/{id}"),
            Some(&expired),
            None,
        );
        assert_eq!(s, 401);
        assert!(b.contains("token expired"), "{b}");

        let (s, _) = call(
            &api,
            "DELETE",
            &format!("/v1/assignments/{id}"),
            Some(&token),
            None,
        );
        assert_eq!(s, 204);
        assert_eq!(api.store_len(), 0);
        let (s, _) = call(
            &api,
            "DELETE",
            &format!("/v1/assignments/{id}"),
            Some(&token),
            None,
        );
        assert_eq!(s, 404);
    }

    #[test]
    fn service_tokens_need_the_shared_secret_and_audience() {
        let api = spawn(DemoApiConfig {
            service_hs256_secret: Some("shared-secret".into()),
            ..Default::default()
        });
        let mint = |secret: &str, aud: &str| {
            let claims = serde_json::json!({"sub": "svc", "aud": aud, "exp": now_secs() + 60});
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap()
        };
        let body = Some(r#"{"title":"t","assignee":"a"}"#);
        assert_eq!(
            call(
                &api,
                "POST",
                "/v1/assignments",
                Some(&mint("shared-secret", "demo")),
                body
            )
            .0,
            201
        );
        assert_eq!(
            call(
                &api,
                "POST",
                "/v1/assignments",
                Some(&mint("other", "demo")),
                body
            )
            .0,
            401
        );
        assert_eq!(
            call(
                &api,
                "POST",
                "/v1/assignments",
                Some(&mint("shared-secret", "x")),
                body
            )
            .0,
            401
        );
    }
}
