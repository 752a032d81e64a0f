//! Time-to-kill and reaction-time probe for `bench/ofrep.sh`: opens `STREAMS` OFREP event
//! streams (`GET /ofrep/v1/events`) spread over the replicas given, waits until every one is
//! open, then sends one request (the kill act, or a telemetry batch that crosses a rollback
//! trigger) to the first replica and measures, for every stream, the time from sending it to
//! receiving the `refetchEvaluation` message. Prints one JSON line: streams, received, the
//! request's own latency, and p50/p95/p99/max in ms.
//!
//! `sse_watch STREAMS TOKEN POST_URL POST_TOKEN BODY_FILE REPLICA_URL…`

use futures_util::StreamExt;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "sse_watch STREAMS TOKEN POST_URL POST_TOKEN BODY_FILE REPLICA_URL…";
    let [
        _,
        streams,
        token,
        post_url,
        post_token,
        body_file,
        replicas @ ..,
    ] = args.as_slice()
    else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let n: usize = streams.parse().expect("STREAMS is a number");
    let body = std::fs::read(body_file).expect("BODY_FILE is readable");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client");
    let (open_tx, mut open_rx) = tokio::sync::mpsc::channel::<()>(n);
    let (got_tx, mut got_rx) = tokio::sync::mpsc::channel::<Instant>(n);
    for i in 0..n {
        let url = format!(
            "{}/ofrep/v1/events?token={token}",
            replicas[i % replicas.len()]
        );
        let (http, open_tx, got_tx) = (http.clone(), open_tx.clone(), got_tx.clone());
        tokio::spawn(async move {
            let res = http.get(&url).send().await.expect("the stream opens");
            assert!(res.status().is_success(), "{}", res.status());
            open_tx.send(()).await.ok();
            let mut stream = res.bytes_stream();
            let mut seen = String::new();
            while let Some(chunk) = stream.next().await {
                let Ok(chunk) = chunk else { return };
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if seen.contains("refetchEvaluation") {
                    got_tx.send(Instant::now()).await.ok();
                    return;
                }
            }
        });
    }
    for _ in 0..n {
        open_rx.recv().await;
    }
    // Every stream is open on the server once its headers arrived; give the replicas a moment
    // to register them all before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t0 = Instant::now();
    let res = http
        .post(post_url)
        .bearer_auth(post_token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the request is answered");
    let post_ms = t0.elapsed().as_secs_f64() * 1e3;
    let status = res.status().as_u16();
    let mut ms: Vec<f64> = Vec::with_capacity(n);
    let deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(deadline);
    while ms.len() < n {
        tokio::select! {
            Some(t) = got_rx.recv() => ms.push((t - t0).as_secs_f64() * 1e3),
            () = &mut deadline => break,
        }
    }
    ms.sort_by(f64::total_cmp);
    let q = |p: f64| {
        if ms.is_empty() {
            f64::NAN
        } else {
            ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1]
        }
    };
    println!(
        "{{\"streams\":{n},\"received\":{},\"post_status\":{status},\"post_ms\":{post_ms:.2},\"p50_ms\":{:.2},\"p95_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2}}}",
        ms.len(),
        q(0.50),
        q(0.95),
        q(0.99),
        q(1.0)
    );
}
