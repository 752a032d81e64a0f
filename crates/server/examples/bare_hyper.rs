//! The benchmark's floor: a bare hyper HTTP/1.1 server answering every request with the same
//! OFREP-shaped body, no routing, no authentication, no evaluation (`bench/ofrep.sh` measures
//! `stagegate serve`'s OFREP endpoint against it).
//!
//! `cargo run --release -p stagegate-server --example bare_hyper -- 127.0.0.1:PORT`

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

// The same allocator as the `stagegate` binary, so the comparison is of the servers alone.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BODY: &str = r#"{"key":"finance-invoice-recon-enabled","value":true,"reason":"SPLIT","variant":"on","metadata":{"agent":"agent-finance-invoice-recon"}}"#;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8099".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("bare hyper on {addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(
                    hyper::Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                        .expect("a fixed response"),
                )
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
