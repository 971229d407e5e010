//! Workflows against the real demo API over real HTTP: the full journey, each injected fault failing the right
//! step with the right error type, teardown after a failure, and secrets kept out of results.

use std::time::Duration;
use vantage_agent::probe::workflow::{Workflow, WorkflowSpec};
use vantage_agent::result::{ErrorType, Phase, ProbeResult};
use vantage_testkit::demo_api::{self, DemoApi, DemoApiConfig, Endpoint};

const PASSWORD: &str = "pw-Zq81-secret";

fn journey(base: &str) -> String {
    format!(
        r#"
variables: {{base: "{base}", password: "{PASSWORD}"}}
steps:
  - name: login
    method: POST
    url: "{{{{base}}}}/auth/token"
    json: {{username: synthetic, password: "{{{{password}}}}"}}
    extract: {{token: "$.access_token"}}
  - name: create
    method: POST
    url: "{{{{base}}}}/v1/assignments"
    headers: {{Authorization: "Bearer {{{{token}}}}"}}
    json: {{title: "synthetic {{{{uuid}}}}", assignee: "probe@example.com"}}
    expect_status: [201]
    extract: {{id: "$.id", title: "$.title", location: {{from: header, name: Location}}}}
  - name: read
    method: GET
    url: "{{{{base}}}}/v1/assignments/{{{{id}}}}"
    headers: {{Authorization: "Bearer {{{{token}}}}"}}
    timeout: 1s
    assert: [{{json: "$.title", equals: "{{{{title}}}}"}}, {{status: 200}}]
teardown:
  - name: delete
    method: DELETE
    url: "{{{{base}}}}/v1/assignments/{{{{id}}}}"
    auth: {{bearer: "{{{{token}}}}"}}
    expect_status: 204
"#
    )
}

fn api() -> DemoApi {
    demo_api::spawn(DemoApiConfig {
        password: PASSWORD.into(),
        ..Default::default()
    })
}

fn workflow(yaml: &str) -> Workflow {
    let spec = WorkflowSpec::from_yaml(serde_norway::from_str(yaml).unwrap()).unwrap();
    Workflow::new(&spec).unwrap()
}

fn step<'a>(r: &'a ProbeResult, name: &str) -> &'a vantage_agent::result::StepResult {
    r.steps.iter().find(|s| s.name == name).unwrap()
}

/// Every text a result can show (messages, Debug and JSON forms).
fn all_text(r: &ProbeResult) -> String {
    format!("{r:?}\n{}", serde_json::to_string(r).unwrap())
}

#[tokio::test]
async fn full_journey_passes_and_cleans_up() {
    let api = api();
    let r = workflow(&journey(&api.url())).run().await;
    assert!(r.success(), "{:?}", r.error);
    assert_eq!(r.teardown_error, None);
    let names: Vec<_> = r.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["login", "create", "read", "delete"]);
    assert!(r.steps.iter().all(|s| s.success && !s.skipped));
    assert_eq!(step(&r, "login").extracted, ["token"]);
    assert_eq!(step(&r, "create").extracted, ["id", "location", "title"]);
    assert_eq!(step(&r, "create").status, Some(201));
    assert_eq!(step(&r, "delete").status, Some(204));
    assert!(step(&r, "delete").teardown);
    // Every step is timed by phase; the session reuses the connection, so only the first step connects.
    for s in &r.steps {
        assert!(s.phases.get(Phase::Processing).is_some(), "{s:?}");
    }
    assert!(step(&r, "login").phases.get(Phase::Connect).is_some());
    assert_eq!(step(&r, "read").phases.get(Phase::Connect), None);
    assert!(r.duration >= r.steps.iter().map(|s| s.duration).sum::<Duration>());
    assert_eq!(r.http.as_ref().unwrap().status, 204);
    assert_eq!(api.store_len(), 0);
    assert_eq!(api.requests(), 4);
}

#[tokio::test]
async fn server_error_on_create_fails_step_create_with_http_status() {
    let api = api();
    api.set_fail_create(true);
    let r = workflow(&journey(&api.url())).run().await;
    let e = r.error.clone().unwrap();
    assert_eq!(e.error_type, ErrorType::HttpStatus);
    assert!(
        e.message
            .starts_with("step create: expected status 201, got 500"),
        "{}",
        e.message
    );
    assert!(step(&r, "read").skipped);
    // Nothing was created, so the teardown has no id to delete: skipped, not a second failure.
    let delete = step(&r, "delete");
    assert!(delete.skipped, "{delete:?}");
    assert_eq!(r.teardown_error, None);
    assert_eq!(r.http.as_ref().unwrap().status, 500);
    assert_eq!(api.store_len(), 0);
}

#[tokio::test]
async fn wrong_title_fails_step_read_and_teardown_still_deletes() {
    let api = api();
    api.set_wrong_title(true);
    let r = workflow(&journey(&api.url())).run().await;
    let e = r.error.clone().unwrap();
    assert_eq!(e.error_type, ErrorType::Assertion);
    assert!(
        e.message
            .starts_with("step read: expected $.title = \"synthetic "),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("got \"\\\"wrong\\\"\"") || e.message.contains("\"wrong\""),
        "{}",
        e.message
    );
    assert!(e.message.ends_with("(HTTP 200)"), "{}", e.message);
    let delete = step(&r, "delete");
    assert!(delete.success && !delete.skipped, "{delete:?}");
    assert_eq!(r.teardown_error, None);
    assert_eq!(
        api.store_len(),
        0,
        "teardown must delete the created assignment"
    );
}

#[tokio::test]
async fn slow_read_times_out_at_step_read() {
    let api = api();
    api.set_slow(Endpoint::Read, Duration::from_secs(5));
    let r = workflow(&journey(&api.url())).run().await;
    let e = r.error.clone().unwrap();
    assert_eq!(e.error_type, ErrorType::Timeout);
    assert!(
        e.message
            .starts_with("step read: no complete response within the step timeout (1s)"),
        "{}",
        e.message
    );
    assert!(step(&r, "read").duration < Duration::from_secs(4));
    assert!(step(&r, "delete").success);
    assert_eq!(api.store_len(), 0);
}

#[tokio::test]
async fn expired_token_fails_step_create_with_401() {
    let api = api();
    api.set_expired_tokens(true);
    let r = workflow(&journey(&api.url())).run().await;
    let e = r.error.clone().unwrap();
    assert_eq!(e.error_type, ErrorType::HttpStatus);
    assert!(
        e.message
            .starts_with("step create: expected status 201, got 401"),
        "{}",
        e.message
    );
    assert!(e.message.contains("token expired"), "{}", e.message);
    assert!(step(&r, "login").success);
    assert_eq!(step(&r, "create").status, Some(401));
}

#[tokio::test]
async fn teardown_failure_is_reported_apart_and_never_hides_the_first_failure() {
    let api = api();
    api.set_wrong_title(true);
    // The teardown deletes twice: the second gets 404.
    let yaml = journey(&api.url()).replace(
        "    expect_status: 204\n",
        "    expect_status: 204\n  - name: delete-again\n    method: DELETE\n    url: \"{{base}}/v1/assignments/{{id}}\"\n    auth: {bearer: \"{{token}}\"}\n",
    );
    let r = workflow(&yaml).run().await;
    assert!(r.error.as_ref().unwrap().message.starts_with("step read:"));
    let t = r.teardown_error.clone().unwrap();
    assert_eq!(t.error_type, ErrorType::HttpStatus);
    assert!(
        t.message
            .starts_with("step delete-again: expected status 2xx, got 404"),
        "{}",
        t.message
    );

    // Without an earlier failure, a failing teardown fails the run and is the teardown error too.
    api.clear_faults();
    let r = workflow(&yaml).run().await;
    assert!(r
        .error
        .as_ref()
        .unwrap()
        .message
        .starts_with("step delete-again:"));
    assert_eq!(r.error, r.teardown_error);
    assert_eq!(api.store_len(), 0);
}

#[tokio::test]
async fn secrets_are_redacted_from_every_message() {
    let api = api();
    // The login step fails on purpose with the token-bearing body in its message; the password shows up as an
    // expected value in another assertion.
    let yaml = journey(&api.url()).replace(
        "assert: [{json: \"$.title\", equals: \"{{title}}\"}, {status: 200}]",
        "assert: [{json: \"$.title\", equals: \"{{password}}\"}]",
    );
    let yaml = format!(
        "{yaml}  - name: leak\n    method: POST\n    url: \"{{{{base}}}}/auth/token\"\n    json: {{username: synthetic, password: \"{{{{password}}}}\"}}\n    assert: [{{body_contains: \"no such text\"}}]\n"
    );
    let r = workflow(&yaml).run().await;
    let read = r.error.clone().unwrap();
    assert!(
        read.message
            .starts_with("step read: expected $.title = \"***\""),
        "{}",
        read.message
    );
    let leak = r.teardown_error.clone().unwrap();
    assert!(
        leak.message
            .starts_with("step leak: expected body to contain"),
        "{}",
        leak.message
    );
    assert!(
        leak.message.contains("\\\"access_token\\\":\\\"***"),
        "{}",
        leak.message
    );
    let text = all_text(&r);
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!text.contains("eyJ"), "a JWT leaked: {text}");
    assert_eq!(api.store_len(), 0);
}

#[tokio::test]
async fn static_validation_names_the_field() {
    let base = "http://127.0.0.1:9";
    let err =
        |yaml: String| WorkflowSpec::from_yaml(serde_norway::from_str(&yaml).unwrap()).unwrap_err();
    let e = err(journey(base).replace(
        "/v1/assignments/{{id}}\"\n    headers",
        "/v1/assignments/{{ide}}\"\n    headers",
    ));
    assert_eq!(e.field, "steps[2].url");
    assert!(
        e.message.starts_with("unknown variable `{{ide}}`"),
        "{}",
        e.message
    );
    let e = err(journey(base).replace("$.access_token", "$.access_token["));
    assert_eq!(e.field, "steps[0].extract.token");
    assert!(e.message.contains("bad JSON path"), "{}", e.message);
    let e = err(journey(base).replace("{status: 200}", "{json: \"$.title[\", exists: true}"));
    assert_eq!(e.field, "steps[2].assert[1]");
    assert!(e.message.contains("invalid JSON path"), "{}", e.message);
    let e = err(journey(base).replace("\"{{base}}/auth/token\"", "\"{{base}/auth/token\""));
    assert_eq!(e.field, "steps[0].url");
}

#[tokio::test]
async fn raw_body_query_and_extraction_forms() {
    // A step can pass values in the query string and extract with a regex and from the status.
    let api = api();
    let yaml = format!(
        r#"
variables: {{base: "{}", password: "{PASSWORD}"}}
steps:
  - name: login
    method: POST
    url: "{{{{base}}}}/auth/token"
    body: '{{"username": "synthetic", "password": "{{{{password}}}}"}}'
    headers: {{Content-Type: application/json}}
    extract:
      token: {{from: regex, pattern: '"access_token":"([^"]+)"'}}
      code: {{from: status}}
  - name: health
    url: "{{{{base}}}}/healthz"
    query: {{code: "{{{{code}}}}", at: "{{{{timestamp}}}} &x"}}
    assert: [{{body_contains: ok}}]
"#,
        api.url()
    );
    let r = workflow(&yaml).run().await;
    assert!(r.success(), "{:?}", r.error);
    assert_eq!(step(&r, "login").extracted, ["code", "token"]);
}

/// The journey with a plain step and an `always: true` cleanup step after `read`, and no teardown.
fn journey_with_cleanup_step(base: &str) -> String {
    let full = journey(base);
    let steps = &full[..full.find("teardown:").unwrap()];
    format!(
        r#"{steps}  - name: read-again
    url: "{{{{base}}}}/v1/assignments/{{{{id}}}}"
    auth: {{bearer: "{{{{token}}}}"}}
  - name: cleanup
    always: true
    method: DELETE
    url: "{{{{base}}}}/v1/assignments/{{{{id}}}}"
    auth: {{bearer: "{{{{token}}}}"}}
    expect_status: 204
"#
    )
}

#[tokio::test]
async fn an_always_step_runs_after_an_earlier_failure_and_plain_steps_do_not() {
    let api = api();
    api.set_wrong_title(true);
    let r = workflow(&journey_with_cleanup_step(&api.url())).run().await;
    let e = r.error.clone().unwrap();
    assert_eq!(e.error_type, ErrorType::Assertion);
    assert!(e.message.starts_with("step read: "), "{}", e.message);
    assert!(
        step(&r, "read-again").skipped,
        "{:?}",
        step(&r, "read-again")
    );
    let cleanup = step(&r, "cleanup");
    assert!(cleanup.success && !cleanup.skipped, "{cleanup:?}");
    assert_eq!(cleanup.status, Some(204));
    assert_eq!(r.teardown_error, None);
    assert_eq!(api.store_len(), 0, "the always step deleted the assignment");
    // login, create, read, cleanup: the skipped step sent nothing.
    assert_eq!(api.requests(), 4);

    // Without a failure before it, the always step is one more step in the journey.
    api.set_wrong_title(false);
    let r = workflow(&journey_with_cleanup_step(&api.url())).run().await;
    assert!(r.success(), "{:?}", r.error);
    assert!(
        r.steps.iter().all(|s| s.success && !s.skipped),
        "{:?}",
        r.steps
    );
    assert_eq!(api.store_len(), 0);
}

#[tokio::test]
async fn a_template_that_renders_to_a_bad_url_at_run_time_is_a_template_error() {
    let api = api();
    // Statically fine (`title` is extracted by `create`); at run time the title is "synthetic <uuid>", which is
    // no URL.
    let full = journey(&api.url());
    let yaml = full.replace(
        "url: \"{{base}}/v1/assignments/{{id}}\"\n    headers",
        "url: \"{{title}}\"\n    headers",
    );
    assert_ne!(yaml, full, "the read step's URL was replaced");
    let r = workflow(&yaml).run().await;
    let e = r.error.clone().unwrap();
    assert_eq!(e.error_type, ErrorType::Template);
    assert!(
        e.message.starts_with("step read: url \"synthetic ")
            && e.message.contains("is not a valid URL"),
        "{}",
        e.message
    );
    assert_eq!(step(&r, "read").status, None, "nothing was sent");
    assert!(step(&r, "delete").success, "teardown still ran");
    assert_eq!(api.store_len(), 0);
}
