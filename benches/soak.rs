//! Soak run of the real server binary: many concurrent clients mixing previews, imports, uploads,
//! downloads and exports across projects, some stalling or hanging up mid-body, for minutes.
//!
//! Reports requests served, answers by status, p50/p99 per operation, and the server's RSS and
//! open file descriptors at start, peak and end. Settings: SOAK_SECS (300), SOAK_CLIENTS (1000),
//! SOAK_PROJECTS (20), SOAK_BAD_PERCENT (5). `cargo bench --bench soak`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[allow(dead_code)]
#[path = "../tests/api/helpers.rs"]
mod helpers;

use helpers::ServerProcess;

const ADMIN: &str = "soak-admin-key";
/// Rows seeded into each project's table.
const SEED_ROWS: u64 = 20_000;
/// Size of the file every project holds for downloads (large enough that a reader that stops
/// reading fills the socket buffers and the server must wait).
const DOWNLOAD_BYTES: usize = 16 << 20;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one operation produced: answers by status and latencies of the answered ones.
#[derive(Default)]
struct OpStats {
    statuses: BTreeMap<String, u64>,
    latencies: Vec<Duration>,
}

#[derive(Default)]
struct Stats {
    ops: BTreeMap<&'static str, OpStats>,
}

impl Stats {
    fn record(&mut self, op: &'static str, outcome: &str, took: Duration) {
        let entry = self.ops.entry(op).or_default();
        *entry.statuses.entry(outcome.to_string()).or_default() += 1;
        entry.latencies.push(took);
    }
}

/// One project's world: its key, the file to download and the file to import.
#[derive(Clone)]
struct Project {
    id: String,
    key: String,
    download_id: String,
    import_id: String,
}

/// The server's resident memory (MiB) and open descriptors now.
fn server_usage(pid: u32) -> (f64, usize) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (rss, fds)
}

fn csv(first: u64, rows: u64) -> Vec<u8> {
    let mut out = String::from("id,v\n");
    for i in first..first + rows {
        out.push_str(&format!(
            "{i},value-{i}-{}\n",
            i.wrapping_mul(2_654_435_761) % 1000
        ));
    }
    out.into_bytes()
}

async fn must(res: reqwest::Response, what: &str) -> Value {
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    assert!(status.is_success(), "{what}: {status} {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

async fn upload(client: &reqwest::Client, base: &str, p: &str, key: &str, data: Vec<u8>) -> String {
    let res = client
        .post(format!("{base}/projects/{p}/files/content?name=f.csv"))
        .bearer_auth(key)
        .body(data)
        .send()
        .await
        .expect("upload");
    must(res, "upload").await["id"]
        .as_str()
        .expect("file id")
        .to_string()
}

async fn setup(client: &reqwest::Client, base: &str, n: u64) -> Vec<Project> {
    let download = helpers::bytes_of(DOWNLOAD_BYTES, 7);
    let mut projects = Vec::new();
    for i in 1..=n {
        let id = i.to_string();
        let res = client
            .post(format!("{base}/projects"))
            .bearer_auth(ADMIN)
            .json(&json!({"id": id}))
            .send()
            .await
            .expect("create project");
        let key = must(res, "create project").await["api_key"]
            .as_str()
            .expect("key")
            .to_string();
        let res = client
            .post(format!("{base}/projects/{id}/buckets"))
            .bearer_auth(&key)
            .json(&json!({"name": "b"}))
            .send()
            .await
            .expect("bucket");
        must(res, "create bucket").await;
        let res = client
            .post(format!("{base}/projects/{id}/buckets/b/tables"))
            .bearer_auth(&key)
            .json(&json!({"name": "t", "primary_key": ["id"], "columns": [
                {"name": "id", "type": "BIGINT", "nullable": false},
                {"name": "v", "type": "VARCHAR"}]}))
            .send()
            .await
            .expect("table");
        must(res, "create table").await;
        let seed = upload(client, base, &id, &key, csv(0, SEED_ROWS)).await;
        let res = client
            .post(format!(
                "{base}/projects/{id}/buckets/b/tables/t/import/file"
            ))
            .bearer_auth(&key)
            .json(&json!({"file_id": seed, "format": "csv",
                          "import_options": {"incremental": false}}))
            .send()
            .await
            .expect("seed import");
        must(res, "seed import").await;
        let download_id = upload(client, base, &id, &key, download.clone()).await;
        let import_id = upload(client, base, &id, &key, csv(SEED_ROWS / 2, 1_000)).await;
        projects.push(Project {
            id,
            key,
            download_id,
            import_id,
        });
    }
    projects
}

/// A small deterministic generator per client, so runs are repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One well-behaved request; returns the operation and its status (or the client error).
async fn good_request(
    client: &reqwest::Client,
    base: &str,
    p: &Project,
    rng: &mut Rng,
) -> (&'static str, String) {
    let roll = rng.below(100);
    let t = format!("{base}/projects/{}/buckets/b/tables/t", p.id);
    let (op, req) = match roll {
        0..=44 => (
            "preview",
            client.get(format!(
                "{t}/preview?limit=100&where_filter=id%20%3E%20{}",
                rng.below(SEED_ROWS)
            )),
        ),
        45..=59 => (
            "download",
            client.get(format!(
                "{base}/projects/{}/files/{}/download",
                p.id, p.download_id
            )),
        ),
        60..=74 => (
            "upload",
            client
                .post(format!("{base}/projects/{}/files/content?name=u.bin", p.id))
                .body(helpers::bytes_of(64 * 1024, rng.next())),
        ),
        75..=89 => ("export", client.get(format!("{t}/export?format=csv"))),
        _ => (
            "import",
            client.post(format!("{t}/import/file")).json(&json!({
                "file_id": p.import_id, "format": "csv",
                "import_options": {"incremental": true}})),
        ),
    };
    let outcome = match req.bearer_auth(&p.key).send().await {
        Ok(res) => {
            let status = res.status().as_u16().to_string();
            // Read the whole body: a download or export is only served once it arrived.
            match res.bytes().await {
                Ok(_) => status,
                Err(_) => format!("{status}+body-error"),
            }
        }
        Err(e) if e.is_timeout() => "client-timeout".into(),
        Err(_) => "connection-error".into(),
    };
    (op, outcome)
}

/// The request line and headers of a 1 MiB upload to `p`, with no body yet.
fn upload_head(p: &Project, name: &str) -> Vec<u8> {
    format!(
        "POST /projects/{}/files/content?name={name} HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {}\r\nContent-Length: 1048576\r\n\r\n",
        p.id, p.key
    )
    .into_bytes()
}

/// A hostile or careless client: stalls an upload after a few bytes, hangs up mid-body, or
/// starts a download and stops reading. Returns what it did and how the server ended it.
async fn bad_request(addr: &str, p: &Project, rng: &mut Rng) -> (&'static str, String) {
    let Ok(mut sock) = TcpStream::connect(addr).await else {
        return ("bad-connect", "connection-error".into());
    };
    match rng.below(3) {
        0 => {
            let _ = sock.write_all(&upload_head(p, "stall.bin")).await;
            let _ = sock.write_all(b"ab").await;
            // Wait for the server to give up on us (408 after BODY_IDLE_TIMEOUT_SECS).
            let mut buf = vec![0u8; 4096];
            let answer = tokio::time::timeout(Duration::from_secs(90), sock.read(&mut buf)).await;
            let outcome = match answer {
                Ok(Ok(n)) if n > 12 => String::from_utf8_lossy(&buf[9..12]).to_string(),
                Ok(_) => "closed".into(),
                Err(_) => "never-ended".into(),
            };
            ("stalled-upload", outcome)
        }
        1 => {
            let _ = sock.write_all(&upload_head(p, "gone.bin")).await;
            let _ = sock.write_all(&vec![b'x'; 300 * 1024]).await;
            drop(sock);
            ("hangup-upload", "hung-up".into())
        }
        _ => {
            let head = format!(
                "GET /projects/{}/files/{}/download HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
                p.id, p.download_id, p.key
            );
            let _ = sock.write_all(head.as_bytes()).await;
            // Read a little, then stop reading for a while, then hang up.
            let mut buf = vec![0u8; 1024];
            let _ = sock.read(&mut buf).await;
            tokio::time::sleep(Duration::from_secs(20 + rng.below(20))).await;
            drop(sock);
            ("stalled-download", "hung-up".into())
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let secs = env_or("SOAK_SECS", 300);
    let clients = env_or("SOAK_CLIENTS", 1000);
    let projects_n = env_or("SOAK_PROJECTS", 20);
    let bad_percent = env_or("SOAK_BAD_PERCENT", 5);

    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start_in(
        &dir.path().join("server"),
        &[("ADMIN_API_KEY", ADMIN), ("RUST_LOG", "warn")],
    )
    .await;
    let pid = server.child.id();
    let base = server.base.clone();
    let addr = base.trim_start_matches("http://").to_string();
    let setup_client = reqwest::Client::new();
    let projects = Arc::new(setup(&setup_client, &base, projects_n).await);
    println!(
        "soak: {clients} clients ({bad_percent}% misbehaving) for {secs} s over {projects_n} projects"
    );

    let stats = Arc::new(Mutex::new(Stats::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let start_usage = server_usage(pid);
    let peak = Arc::new(Mutex::new(start_usage));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (rss, fds) = server_usage(pid);
                {
                    let mut p = peak.lock();
                    p.0 = p.0.max(rss);
                    p.1 = p.1.max(fds);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };

    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let bad = c * 100 < clients * bad_percent;
        let (projects, stats, stop) = (projects.clone(), stats.clone(), stop.clone());
        let (base, addr) = (base.clone(), addr.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (c + 1).wrapping_mul(0xff51_afd7_ed55_8ccd));
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client");
            // Spread the start so the server is not hit by all connects in one instant.
            tokio::time::sleep(Duration::from_millis(rng.below(5_000))).await;
            while !stop.load(Ordering::Relaxed) {
                let p = &projects[rng.below(projects.len() as u64) as usize];
                let begun = Instant::now();
                let (op, outcome) = if bad {
                    bad_request(&addr, p, &mut rng).await
                } else {
                    good_request(&client, &base, p, &mut rng).await
                };
                stats.lock().record(op, &outcome, begun.elapsed());
                // Think time between requests, as real clients have.
                tokio::time::sleep(Duration::from_millis(rng.below(200))).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let drain_deadline = Instant::now() + Duration::from_secs(150);
    for t in tasks {
        let left = drain_deadline.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(left, t).await;
    }
    let elapsed = started.elapsed();
    let _ = sampler.await;
    // Give the server a moment to close what the clients closed, then read the end state.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let end_usage = server_usage(pid);
    let peak = *peak.lock();

    let stats = stats.lock();
    let total: u64 = stats.ops.values().flat_map(|o| o.statuses.values()).sum();
    println!(
        "requests answered or ended: {total} ({:.0}/s over the {secs} s load; {:.0} s until the last client finished)",
        total as f64 / secs as f64,
        elapsed.as_secs_f64()
    );
    println!(
        "{:<18} {:>8} {:>10} {:>10}  outcomes",
        "operation", "count", "p50 ms", "p99 ms"
    );
    let mut five_xx = 0;
    for (op, o) in &stats.ops {
        let mut lat = o.latencies.clone();
        lat.sort();
        let outcomes: Vec<String> = o.statuses.iter().map(|(s, n)| format!("{s}:{n}")).collect();
        five_xx += o
            .statuses
            .iter()
            .filter(|(s, _)| s.starts_with('5'))
            .map(|(_, n)| n)
            .sum::<u64>();
        println!(
            "{op:<18} {:>8} {:>10.1} {:>10.1}  {}",
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            outcomes.join(" ")
        );
    }
    println!("5xx answers: {five_xx}");
    println!(
        "server RSS MiB  start {:.0}  peak {:.0}  end {:.0}",
        start_usage.0, peak.0, end_usage.0
    );
    println!(
        "server open fds start {}  peak {}  end {}",
        start_usage.1, peak.1, end_usage.1
    );
    drop(server);
}
