//! Baseline for the ingest benchmark: a plain actix-web handler that reads the body and answers 202,
//! so `bench/ingest` can show what the real pipeline costs on top of actix itself.

use actix_web::{web, App, HttpResponse, HttpServer};

async fn hello(body: web::Bytes) -> HttpResponse {
    HttpResponse::Accepted().body(format!("{{\"bytes\":{}}}", body.len()))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9481".into());
    HttpServer::new(|| {
        App::new()
            .app_data(web::PayloadConfig::new(1 << 20))
            .default_service(web::to(hello))
    })
    .bind(listen)?
    .run()
    .await
}
