//! Multi-step API workflows (`type: api_workflow`): a user journey of HTTP steps sharing variables, checked
//! step by step, with teardown.
//!
//! ```yaml
//! - name: assignment-journey
//!   type: api_workflow          # `workflow` is accepted too
//!   every: 1m
//!   timeout: 30s                # the whole run, teardown included; each step also has its own (default 10s)
//!   variables:
//!     base: "https://api.example.com"
//!     password: "${SYNTHETIC_PASSWORD}"        # a credential by its name
//!     pin: {value: "${PIN}", secret: true}     # or say so
//!   steps:
//!     - name: login
//!       method: POST
//!       url: "{{base}}/auth/token"
//!       json: {username: synthetic, password: "{{password}}"}
//!       extract: {token: "$.access_token"}
//!     - name: create
//!       method: POST
//!       url: "{{base}}/v1/assignments"
//!       auth: {bearer: "{{token}}"}
//!       json: {title: "synthetic {{uuid}}", assignee: "probe@example.com"}
//!       expect_status: [201]
//!       extract: {id: "$.id", title: "$.title"}
//!     - name: read
//!       url: "{{base}}/v1/assignments/{{id}}"
//!       auth: {bearer: "{{token}}"}
//!       assert: [{json: "$.title", equals: "{{title}}"}]
//!       timeout: 2s
//!   teardown:
//!     - name: delete
//!       method: DELETE
//!       url: "{{base}}/v1/assignments/{{id}}"
//!       auth: {bearer: "{{token}}"}
//! ```
//! Step keys: `name`, `method` (GET), `url`, `headers`, `query`, `body` (raw text) or `json` (YAML sent as
//! JSON), `extract`, `assert`, `expect_status` (default `2xx`), `timeout`, `always`, `auth` (`bearer`, `basic:
//! {username, password}`, or `jwt` to mint a service token). Workflow keys: `variables`, `steps`, `teardown`,
//! `tls` (as for HTTP checks), `follow_redirects` (default false).
//!
//! Secrets: variables whose name names a credential (`token`, `password`, `key`, ...) or that say `secret:
//! true`, values extracted into such variables, and what a run sends as header values (but descriptive headers
//! such as `Accept`), bodies, query values and credentials are scrubbed from every message of the run.
//!
//! # Layout
//! - [`spec`]: the config shape and its static validation.
//! - [`template`]: `{{var}}` templates, the per-run variable scope and generated values.
//! - [`extract`]: taking values out of a response.
//! - [`jwt`]: minting signed service tokens.
//! - [`run`]: running the steps and building the result.

pub mod extract;
pub mod jwt;
pub mod run;
pub mod spec;
pub mod template;

pub use extract::looks_secret;
pub use run::Workflow;
pub use spec::{StepSpec, WorkflowSpec};

/// The `check_type` label of workflow checks.
pub const CHECK_TYPE: &str = "api_workflow";
