//! End-to-end benchmark of the real server binary (API load, files, imports and exports), each
//! figure beside a baseline measured in the same run; BENCH_SECTIONS=api,files,data,stalls,auth,
//! catalog,access,metrics,snapshots,workspaces,branches,s3 picks parts.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

// The process-server client the integration tests use; the rest of that harness stays unused.
#[allow(dead_code)]
#[path = "../tests/api/helpers.rs"]
mod helpers;

use helpers::ServerProcess;

#[path = "api/s3.rs"]
mod s3;

const ADMIN: &str = "bench-admin-key";
const CONNECTIONS: usize = 32;

/// The server binary with the benchmark's admin key, in its own dir under `dir`.
async fn start(dir: &Path) -> ServerProcess {
    ServerProcess::start_in(dir, &[("ADMIN_API_KEY", ADMIN), ("RUST_LOG", "warn")]).await
}

/// Creates project `id`; returns its key.
async fn create_project(client: &reqwest::Client, b: &str, id: &str) -> String {
    let created = send(
        client,
        reqwest::Method::POST,
        format!("{b}/projects"),
        ADMIN,
        Some(json!({ "id": id })),
    )
    .await;
    created["api_key"].as_str().unwrap().to_string()
}

/// Creates project 1 with bucket `b`; returns the project key.
async fn project_with_bucket(client: &reqwest::Client, b: &str) -> String {
    let key = create_project(client, b, "1").await;
    send(
        client,
        reqwest::Method::POST,
        format!("{b}/projects/1/buckets"),
        &key,
        Some(json!({"name": "b"})),
    )
    .await;
    key
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> Value {
    let mut req = client.request(method, url).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    assert!(res.status().is_success(), "status {}", res.status());
    res.json().await.unwrap_or(Value::Null)
}

/// Requests/s and latency percentiles of GETs to `path` from CONNECTIONS concurrent clients.
async fn load(base: &str, path: &str, key: Option<&str>, secs: u64) -> (f64, Duration, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for _ in 0..CONNECTIONS {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let url = format!("{base}{path}");
        let key = key.map(str::to_string);
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let mut req = client.get(&url);
                if let Some(k) = &key {
                    req = req.bearer_auth(k);
                }
                let res = req.send().await.expect("request");
                assert!(res.status().is_success());
                let _ = res.bytes().await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (all.len() as f64 / elapsed, pct(0.50), pct(0.99))
}

/// The same load measured by `wrk` (a separate process, cheaper per request than our client),
/// when it is installed: (requests/s, p50 ms, p99 ms).
fn wrk(base: &str, path: &str, key: Option<&str>, secs: u64) -> Option<(f64, f64, f64)> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{CONNECTIONS}"),
        &format!("-d{secs}s"),
        "--latency",
    ]);
    if let Some(k) = key {
        cmd.args(["-H", &format!("Authorization: Bearer {k}")]);
    }
    let out = cmd.arg(format!("{base}{path}")).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
    };
    let to_ms = |v: String| {
        let (num, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
        let n: f64 = num.parse().ok()?;
        Some(match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            _ => return None,
        })
    };
    let rps: f64 = field("Requests/sec:")?.parse().ok()?;
    Some((rps, to_ms(field("50%")?)?, to_ms(field("99%")?)?))
}

/// Seconds per load run (`BENCH_SECS`, default 5).
fn bench_secs() -> u64 {
    std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Peak resident memory of a process, from /proc (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Streams a GET body to nowhere; returns the byte count.
async fn drain(client: &reqwest::Client, url: &str, key: Option<&str>) -> u64 {
    let mut req = client.get(url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let mut res = req.send().await.expect("download");
    assert!(
        res.status().is_success(),
        "download status {}",
        res.status()
    );
    let mut n = 0u64;
    while let Some(chunk) = res.chunk().await.expect("chunk") {
        n += chunk.len() as u64;
    }
    n
}

/// nginx serving `root` on loopback, as the download baseline; None when nginx is absent.
fn start_nginx(prefix: &Path, root: &Path) -> Option<(Child, u16)> {
    let port = helpers::free_port();
    let conf = prefix.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off; master_process off; worker_processes 1; pid {p}/nginx.pid; error_log {p}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; sendfile on; client_body_temp_path {p}; proxy_temp_path {p};\n\
               fastcgi_temp_path {p}; uwsgi_temp_path {p}; scgi_temp_path {p};\n\
               server {{ listen 127.0.0.1:{port}; root {r}; }} }}\n",
            p = prefix.display(),
            r = root.display()
        ),
    )
    .ok()?;
    let child = Command::new("nginx")
        .args([
            "-c",
            &conf.to_string_lossy(),
            "-p",
            &prefix.to_string_lossy(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(300));
    Some((child, port))
}

/// 1 GiB through the Files API against disk (`dd … conv=fdatasync`) and nginx baselines.
async fn files_bench(dir: &Path, mib: usize) {
    let len = mib * 1024 * 1024;
    // Seed 1 gives the same bytes the benchmark always used.
    let data = helpers::bytes_of(len, 1);
    let src_dir = dir.join("static");
    std::fs::create_dir_all(&src_dir).unwrap();
    let src = src_dir.join("big.bin");
    std::fs::write(&src, &data).unwrap();

    // Upload baseline: the same bytes written to the same disk with fdatasync.
    let t = Instant::now();
    let ok = Command::new("dd")
        .arg(format!("if={}", src.display()))
        .arg(format!("of={}", dir.join("dd.out").display()))
        .args(["bs=1M", "conv=fdatasync", "status=none"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let dd_secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(dir.join("dd.out"));

    let mut server = start(&dir.join("files-server")).await;
    let b = server.base.clone();
    let client = reqwest::Client::new();
    let key = create_project(&client, &b, "f").await;

    let t = Instant::now();
    let res = client
        .post(format!("{b}/projects/f/files/content?name=big.bin"))
        .bearer_auth(&key)
        .body(data)
        .send()
        .await
        .expect("upload");
    let up_secs = t.elapsed().as_secs_f64();
    assert_eq!(res.status(), 201, "upload failed");
    let file: Value = res.json().await.unwrap();
    let id = file["id"].as_str().unwrap().to_string();

    let t = Instant::now();
    let n = drain(
        &client,
        &format!("{b}/projects/f/files/{id}/download"),
        Some(&key),
    )
    .await;
    let down_secs = t.elapsed().as_secs_f64();
    assert_eq!(n as usize, len);
    let rss = peak_rss_mib(server.child.id());

    let nginx = start_nginx(dir, &src_dir);
    let nginx_secs = if let Some((_, port)) = &nginx {
        let t = Instant::now();
        let n = drain(&client, &format!("http://127.0.0.1:{port}/big.bin"), None).await;
        assert_eq!(n as usize, len);
        Some(t.elapsed().as_secs_f64())
    } else {
        None
    };
    if let Some((mut child, _)) = nginx {
        let _ = child.kill();
        let _ = child.wait();
    }

    let mbs = |secs: f64| mib as f64 / secs;
    println!(
        "{:<44} {:>12.0} {:>12} {:>12}",
        format!("upload {mib} MiB MB/s (baseline: dd fdatasync)"),
        mbs(up_secs),
        if ok {
            format!("{:.0}", mbs(dd_secs))
        } else {
            "n/a".into()
        },
        if ok {
            format!("{:.2}", dd_secs / up_secs)
        } else {
            "n/a".into()
        }
    );
    match nginx_secs {
        Some(ns) => println!(
            "{:<44} {:>12.0} {:>12.0} {:>12.2}",
            format!("download {mib} MiB MB/s (baseline: nginx)"),
            mbs(down_secs),
            mbs(ns),
            ns / down_secs
        ),
        None => println!(
            "{:<44} {:>12.0} {:>12} {:>12}",
            format!("download {mib} MiB MB/s (nginx not installed)"),
            mbs(down_secs),
            "n/a",
            "n/a"
        ),
    }
    if let Some(rss) = rss {
        println!(
            "{:<44} {:>12.1}",
            "server peak RSS MiB during the file runs", rss
        );
    }
    server.stop();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    // BENCH_SECTIONS picks what runs: any of api, files, data, stalls, auth, catalog, access,
    // metrics, snapshots, workspaces, branches, s3 (default: all).
    let sections = std::env::var("BENCH_SECTIONS").unwrap_or_else(|_| {
        "api,files,data,stalls,auth,catalog,access,metrics,snapshots,workspaces,branches,s3".into()
    });
    let wants = |s: &str| sections.split(',').any(|x| x.trim() == s);
    if wants("api") {
        api_bench(dir.path()).await;
    }
    if wants("files") {
        let mib: usize = std::env::var("BENCH_FILE_MIB")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1024);
        files_bench(dir.path(), mib).await;
    }
    if wants("data") {
        data_bench(dir.path()).await;
    }
    if wants("stalls") {
        stalls_bench(dir.path()).await;
    }
    if wants("auth") {
        auth_bench(dir.path()).await;
    }
    if wants("catalog") {
        catalog_bench(dir.path()).await;
    }
    if wants("access") {
        access_bench(dir.path()).await;
    }
    if wants("metrics") {
        metrics_bench(dir.path()).await;
    }
    if wants("snapshots") {
        snapshots_bench(dir.path()).await;
    }
    if wants("workspaces") {
        workspaces_bench(dir.path()).await;
    }
    if wants("branches") {
        branches_bench(dir.path()).await;
    }
    if wants("s3") {
        let mib = std::env::var("BENCH_FILE_MIB")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1024);
        let part_mib = std::env::var("BENCH_PART_MIB")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(16);
        s3::s3_bench(dir.path(), mib, part_mib).await;
    }
}

/// Issue 15: the first write into a dev branch of the BENCH_ROWS-row table (copy-on-write +
/// the write) vs the same write on main; a 1 000-row preview of a main table read through a
/// branch vs directly (target ≤ 1.1×). Says whether this filesystem reflinks and which copy the
/// server made (its own log line per copy). The data dir is under the temp dir, so
/// `TMPDIR=/mnt/xfs/tmp` runs it on XFS.
async fn branches_bench(root: &Path) {
    let rows = bench_rows();
    let work = root.join("branches-bench");
    std::fs::create_dir_all(&work).unwrap();
    let csv = work.join("full.csv");
    generate_csv(&csv, 0, rows, "br");
    let reflink = std::process::Command::new("cp")
        .arg("--reflink=always")
        .arg(&csv)
        .arg(work.join("reflink-probe"))
        .status()
        .is_ok_and(|s| s.success());

    let client = reqwest::Client::new();
    // The copy-on-write log line says which copy the engine made (`kind=Reflink|Copy`).
    let server = ServerProcess::start_in(
        &work.join("server"),
        &[
            ("ADMIN_API_KEY", ADMIN),
            ("RUST_LOG", "warn,duckbank::service::branches::overlay=info"),
        ],
    )
    .await;
    let b = server.base.clone();
    let key = project_with_bucket(&client, &b).await;
    create_data_table(&client, &b, &key, "t").await;
    let file_id = upload_file(&client, &b, &key, std::fs::read(&csv).unwrap()).await;
    import(&client, &b, &key, "t", &file_id, false).await;
    let delete_one = |table: String, id: u64| {
        send(
            &client,
            reqwest::Method::DELETE,
            format!("{table}/rows"),
            &key,
            Some(json!({ "where_clause": format!("id = {id}") })),
        )
    };
    let (mut on_main, mut first_in_branch) = (Vec::new(), Vec::new());
    for i in 0..3u64 {
        let t = Instant::now();
        delete_one(format!("{b}/projects/1/buckets/b/tables/t"), 1 + i).await;
        on_main.push(t.elapsed());
        let branch = send(
            &client,
            reqwest::Method::POST,
            format!("{b}/projects/1/branches"),
            &key,
            Some(json!({ "name": format!("bench-{i}") })),
        )
        .await;
        let id = branch["id"].as_str().unwrap();
        let t = Instant::now();
        delete_one(
            format!("{b}/projects/1/branches/{id}/buckets/b/tables/t"),
            100 + i,
        )
        .await;
        first_in_branch.push(t.elapsed());
    }
    // A fresh branch has no copy: its reads go to main's file.
    let fresh = send(
        &client,
        reqwest::Method::POST,
        format!("{b}/projects/1/branches"),
        &key,
        Some(json!({ "name": "reader" })),
    )
    .await;
    let fresh = fresh["id"].as_str().unwrap().to_string();
    let direct = format!("{b}/projects/1/buckets/b/tables/t/preview?limit=1000");
    let through = format!("{b}/projects/1/branches/{fresh}/buckets/b/tables/t/preview?limit=1000");
    // Main through the branch-style path: separates the path style from the branch lookup.
    let default = format!("{b}/projects/1/branches/default/buckets/b/tables/t/preview?limit=1000");
    let (mut main_reads, mut branch_reads, mut default_reads) =
        (Vec::new(), Vec::new(), Vec::new());
    for i in 0..60 {
        let mut order = [
            (direct.clone(), &mut main_reads),
            (through.clone(), &mut branch_reads),
            (default.clone(), &mut default_reads),
        ];
        // Each goes first in turn: no route always reads a warm cache after another.
        order.rotate_left(i % 3);
        for (url, into) in order {
            let t = Instant::now();
            let p = send(&client, reqwest::Method::GET, url, &key, None).await;
            into.push(t.elapsed());
            assert_eq!(p["rows"].as_array().map(Vec::len), Some(1000));
        }
    }
    let logs = server.logs();
    let copies = |kind: &str| {
        logs.lines()
            .filter(|l| l.contains("copied into the branch") && l.contains(kind))
            .count()
    };
    println!(
        "\n== branches ({rows} rows; medians; ours, baseline, ratio; data under {}; reflink on this filesystem: {}; the server's copies: {} reflink, {} plain)",
        root.display(),
        if reflink { "yes" } else { "no, plain copies" },
        copies("Reflink"),
        copies("Copy"),
    );
    row(
        "first write in a branch (copy + delete 1 row) vs the delete on main",
        ms(median(first_in_branch)),
        ms(median(on_main)),
        "ms",
    );
    row(
        "preview 1000 rows of a main table: through a branch vs directly",
        ms(median(branch_reads.clone())),
        ms(median(main_reads)),
        "ms",
    );
    row(
        "the same: through a branch vs via branches/default",
        ms(median(branch_reads)),
        ms(median(default_reads)),
        "ms",
    );
}

/// Issue 16: `load` of the BENCH_ROWS-row table into a workspace vs a raw `CREATE TABLE AS
/// SELECT` from the attached file (target ≤ 1.3×); 100 000 rows over the wire protocol
/// (tokio-postgres, binary) vs the same query in-process DuckDB (target ≤ 2×).
async fn workspaces_bench(root: &Path) {
    let rows = bench_rows();
    let work = root.join("workspaces-bench");
    std::fs::create_dir_all(&work).unwrap();
    let csv = work.join("full.csv");
    generate_csv(&csv, 0, rows, "w");
    raw_copy(&work, "raw", &csv);
    let raw_file = work.join("raw.duckdb");

    let mut raw_load = Vec::new();
    let mut raw_query = Vec::new();
    for i in 0..3 {
        let target = work.join(format!("ws{i}.duckdb"));
        let c = duckdb::Connection::open(&target).unwrap();
        c.execute_batch(&format!(
            "ATTACH '{}' AS src (READ_ONLY)",
            raw_file.display()
        ))
        .unwrap();
        let t = Instant::now();
        c.execute_batch("CREATE TABLE x AS SELECT * FROM src.data; CHECKPOINT")
            .unwrap();
        raw_load.push(t.elapsed());
    }
    let c = duckdb::Connection::open(&raw_file).unwrap();
    for _ in 0..5 {
        let t = Instant::now();
        let mut stmt = c
            .prepare("SELECT * FROM data ORDER BY id LIMIT 100000")
            .unwrap();
        let mut got = stmt.query([]).unwrap();
        let mut n = 0;
        while let Some(r) = got.next().unwrap() {
            for col in 0..5 {
                let _: duckdb::types::Value = r.get(col).unwrap();
            }
            n += 1;
        }
        assert_eq!(n, 100_000.min(rows));
        raw_query.push(t.elapsed());
    }
    drop(c);

    let client = reqwest::Client::new();
    let port = helpers::free_port().to_string();
    let server = ServerProcess::start_in(
        &work.join("server"),
        &[
            ("ADMIN_API_KEY", ADMIN),
            ("RUST_LOG", "warn"),
            ("PGWIRE_PORT", &port),
        ],
    )
    .await;
    let b = server.base.clone();
    let key = project_with_bucket(&client, &b).await;
    create_data_table(&client, &b, &key, "t").await;
    let file_id = upload_file(&client, &b, &key, std::fs::read(&csv).unwrap()).await;
    import(&client, &b, &key, "t", &file_id, false).await;
    let ws = send(
        &client,
        reqwest::Method::POST,
        format!("{b}/projects/1/workspaces"),
        &key,
        Some(json!({"name": "bench"})),
    )
    .await;
    let id = ws["id"].as_str().unwrap().to_string();
    let mut ours_load = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        let loaded = send(
            &client,
            reqwest::Method::POST,
            format!("{b}/projects/1/workspaces/{id}/load"),
            &key,
            Some(json!({"tables": [{"source": "b.t", "destination": format!("x{i}")}]})),
        )
        .await;
        ours_load.push(t.elapsed());
        assert_eq!(loaded["loaded"][0]["rows"], rows);
    }
    let config = format!(
        "host=127.0.0.1 port={port} user={id} dbname={id} password={}",
        ws["connection"]["password"].as_str().unwrap()
    );
    let (pg, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
        .await
        .expect("wire connect");
    tokio::spawn(connection);
    let mut ours_query = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let got = pg
            .query("SELECT * FROM x0 ORDER BY id LIMIT 100000", &[])
            .await
            .unwrap();
        assert_eq!(got.len() as u64, 100_000.min(rows));
        ours_query.push(t.elapsed());
    }
    println!("\n== workspaces ({rows} rows; medians; ours, baseline, ratio)");
    row(
        "load (POST …/load) vs CREATE TABLE AS SELECT attached",
        ms(median(ours_load)),
        ms(median(raw_load)),
        "ms",
    );
    row(
        "100 000 rows over the wire vs in-process DuckDB",
        ms(median(ours_query)),
        ms(median(raw_query)),
        "ms",
    );
}

/// Issue 14: a snapshot of the BENCH_ROWS-row table vs raw DuckDB `COPY … TO` Parquet (ZSTD);
/// its restore vs a raw `CREATE TABLE` with the key + `INSERT … SELECT * FROM read_parquet`
/// into a fresh file; a 1 000-row preview of the snapshot vs of the live table.
async fn snapshots_bench(root: &Path) {
    let rows = bench_rows();
    let work = root.join("snapshots-bench");
    std::fs::create_dir_all(&work).unwrap();
    let csv = work.join("full.csv");
    generate_csv(&csv, 0, rows, "s");
    raw_copy(&work, "raw", &csv);
    let parquet = work.join("raw.parquet");
    let mut raw_snap = Vec::new();
    let mut raw_restore = Vec::new();
    for i in 0..3 {
        let c = duckdb::Connection::open(work.join("raw.duckdb")).unwrap();
        let _ = std::fs::remove_file(&parquet);
        let t = Instant::now();
        c.execute_batch(&format!(
            "COPY data TO '{}' (FORMAT parquet, COMPRESSION zstd)",
            parquet.display()
        ))
        .unwrap();
        raw_snap.push(t.elapsed());
        drop(c);
        let file = work.join(format!("restored{i}.duckdb"));
        let c = duckdb::Connection::open(&file).unwrap();
        let t = Instant::now();
        c.execute_batch(&format!(
            "BEGIN; {DATA_DDL}; INSERT INTO data SELECT * FROM read_parquet('{}'); COMMIT;",
            parquet.display()
        ))
        .unwrap();
        drop(c);
        raw_restore.push(t.elapsed());
    }

    let client = reqwest::Client::new();
    let server = start(&work.join("server")).await;
    let b = server.base.clone();
    let key = project_with_bucket(&client, &b).await;
    create_data_table(&client, &b, &key, "t").await;
    let file_id = upload_file(&client, &b, &key, std::fs::read(&csv).unwrap()).await;
    import(&client, &b, &key, "t", &file_id, false).await;
    let snapshots = format!("{b}/projects/1/branches/default/snapshots");
    let mut ours_snap = Vec::new();
    let mut ours_restore = Vec::new();
    let mut id = String::new();
    for _ in 0..3 {
        let t = Instant::now();
        let s = send(
            &client,
            reqwest::Method::POST,
            snapshots.clone(),
            &key,
            Some(json!({"bucket": "b", "table": "t"})),
        )
        .await;
        ours_snap.push(t.elapsed());
        assert_eq!(s["row_count"], rows);
        id = s["id"].as_str().unwrap().to_string();
        let t = Instant::now();
        let r = send(
            &client,
            reqwest::Method::POST,
            format!("{snapshots}/{id}/restore?skip_snapshot=true"),
            &key,
            Some(json!({})),
        )
        .await;
        ours_restore.push(t.elapsed());
        assert_eq!(r["row_count"], rows);
    }
    let preview = format!("{b}/projects/1/buckets/b/tables/t/preview?limit=1000");
    let mut live = Vec::new();
    let mut past = Vec::new();
    for _ in 0..20 {
        for (url, into) in [
            (preview.clone(), &mut live),
            (format!("{preview}&snapshot={id}"), &mut past),
        ] {
            let t = Instant::now();
            let p = send(&client, reqwest::Method::GET, url, &key, None).await;
            into.push(t.elapsed());
            assert_eq!(p["rows"].as_array().map(Vec::len), Some(1000));
        }
    }
    println!("\n== snapshots ({rows} rows; medians; ours, baseline, ratio)");
    row(
        "snapshot (POST …/snapshots) vs COPY TO parquet zstd",
        ms(median(ours_snap)),
        ms(median(raw_snap)),
        "ms",
    );
    row(
        "restore over the table vs CREATE + INSERT parquet",
        ms(median(ours_restore)),
        ms(median(raw_restore)),
        "ms",
    );
    row(
        "preview 1000 rows: snapshot vs live table",
        ms(median(past)),
        ms(median(live)),
        "ms",
    );
}

/// Issue 12: the P1 request (authenticated bucket list) on a server with per-key rate limits on
/// vs one with them off, runs interleaved; and a bucket create with and without an idempotency
/// key (the stored answer is one sealed catalog row).
async fn access_bench(root: &Path) {
    let secs = bench_secs();
    let plain = start(&root.join("access-plain")).await;
    let limited = ServerProcess::start_in(
        &root.join("access-limited"),
        &[
            ("ADMIN_API_KEY", ADMIN),
            ("RUST_LOG", "warn"),
            ("RATE_LIMIT_PER_MINUTE", "1000000000"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let plain_key = project_with_bucket(&client, &plain.base).await;
    let limited_key = project_with_bucket(&client, &limited.base).await;
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        off.push(load(&plain.base, "/projects/1/buckets", Some(&plain_key), secs).await);
        on.push(
            load(
                &limited.base,
                "/projects/1/buckets",
                Some(&limited_key),
                secs,
            )
            .await,
        );
    }
    let mean_rps = |runs: &[(f64, Duration, Duration)]| {
        runs.iter().map(|r| r.0).sum::<f64>() / runs.len() as f64
    };
    let best_p50 =
        |runs: &[(f64, Duration, Duration)]| runs.iter().map(|r| ms(r.1)).fold(f64::MAX, f64::min);

    let b = &plain.base;
    let create = |i: usize, idem: bool| {
        let mut req = client
            .post(format!("{b}/projects/1/buckets"))
            .bearer_auth(&plain_key)
            .json(&json!({ "name": format!("{}{i}", if idem { "k" } else { "n" }) }));
        if idem {
            req = req.header("x-idempotency-key", format!("bench-{i}"));
        }
        req
    };
    let (mut with_key, mut without) = (Vec::new(), Vec::new());
    for i in 0..200 {
        let t = Instant::now();
        let res = create(i, false).send().await.unwrap();
        assert_eq!(res.status(), 201);
        without.push(t.elapsed());
        let t = Instant::now();
        let res = create(i, true).send().await.unwrap();
        assert_eq!(res.status(), 201);
        with_key.push(t.elapsed());
    }

    println!("\naccess: rate limits and idempotency ({CONNECTIONS} connections, {secs}s per run, 2 runs each)");
    row(
        "bucket list req/s, rate limit on vs off",
        mean_rps(&on),
        mean_rps(&off),
        "",
    );
    row(
        "bucket list best p50 ms, rate limit on vs off",
        best_p50(&on),
        best_p50(&off),
        "",
    );
    row(
        "bucket create median ms, idempotency key vs none",
        ms(median(with_key)),
        ms(median(without)),
        "",
    );
}

/// The P1 request (authenticated bucket list) on a server measuring requests (metrics on,
/// tracing without exporter) and on one with METRICS_ENABLED=false, in alternating rounds so
/// both see the same machine; medians of the rounds.
async fn metrics_bench(root: &Path) {
    let secs = bench_secs();
    let rounds = 3;
    let client = reqwest::Client::new();
    let mut servers = Vec::new();
    for enabled in ["true", "false"] {
        let dir = root.join(format!("metrics-server-{enabled}"));
        let env = [
            ("ADMIN_API_KEY", ADMIN),
            ("RUST_LOG", "warn"),
            ("METRICS_ENABLED", enabled),
        ];
        let server = ServerProcess::start_in(&dir, &env).await;
        let key = project_with_bucket(&client, &server.base).await;
        servers.push((server, key));
    }
    let mut figures: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (i, (server, key)) in servers.iter().enumerate() {
            let path = "/projects/1/buckets";
            let measured = match wrk(&server.base, path, Some(key), secs) {
                Some(f) => f,
                None => {
                    let (rps, p50, p99) = load(&server.base, path, Some(key), secs).await;
                    (rps, ms(p50), ms(p99))
                }
            };
            figures[i].push(measured);
        }
    }
    let med = |v: &[(f64, f64, f64)], pick: fn(&(f64, f64, f64)) -> f64| {
        let mut x: Vec<f64> = v.iter().map(pick).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    println!("\n== metrics: P1 bucket list, {rounds} alternating rounds of {secs}s (medians)");
    println!("{:<52} {:>11} {:>11} {:>8}", "", "on", "off", "on/off");
    let (on, off) = (&figures[0], &figures[1]);
    let each = |v: &[(f64, f64, f64)]| v.iter().map(|f| format!("{:.0}", f.0)).collect::<Vec<_>>();
    println!("rounds, requests/s: on {:?}, off {:?}", each(on), each(off));
    row("requests/s", med(on, |f| f.0), med(off, |f| f.0), "");
    row("p50 latency", med(on, |f| f.1), med(off, |f| f.1), "ms");
    row("p99 latency", med(on, |f| f.2), med(off, |f| f.2), "ms");
    let overhead = 1.0 - med(on, |f| f.0) / med(off, |f| f.0);
    println!(
        "throughput overhead of metrics + tracing (no exporter): {:.1} %",
        overhead * 100.0
    );
}

/// Latency of `n` previews of table `t` one after another: (p50, p99).
async fn preview_latency(client: &reqwest::Client, b: &str, key: &str, n: usize) -> (f64, f64) {
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        send(
            client,
            reqwest::Method::GET,
            format!("{b}/projects/1/buckets/b/tables/t/preview"),
            key,
            None,
        )
        .await;
        lat.push(t.elapsed());
    }
    lat.sort();
    (ms(lat[n / 2]), ms(lat[n * 99 / 100]))
}

/// Issue 11: previews beside 600 uploads that stalled after 2 bytes and 600 downloads whose
/// client never reads, against previews on the idle server; and the server's memory.
async fn stalls_bench(root: &Path) {
    use tokio::io::AsyncWriteExt;
    let server = start(&root.join("stalls-server")).await;
    let b = server.base.clone();
    let client = reqwest::Client::new();
    let key = project_with_bucket(&client, &b).await;
    send(
        &client,
        reqwest::Method::POST,
        format!("{b}/projects/1/buckets/b/tables"),
        &key,
        Some(json!({"name": "t", "columns": [{"name": "id", "type": "BIGINT"}]})),
    )
    .await;
    let file = upload_file(&client, &b, &key, helpers::bytes_of(8 << 20, 7)).await;
    let (idle_p50, idle_p99) = preview_latency(&client, &b, &key, 200).await;

    let addr: std::net::SocketAddr = b.trim_start_matches("http://").parse().unwrap();
    let mut held = Vec::with_capacity(1200);
    for i in 0..600 {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /projects/1/files/content?name=s{i}.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Length: 10000000\r\n\r\nab"
        );
        c.write_all(head.as_bytes()).await.unwrap();
        held.push(c);
    }
    for _ in 0..600 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut c = socket.connect(addr).await.unwrap();
        let head = format!(
            "GET /projects/1/files/{file}/download HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n"
        );
        c.write_all(head.as_bytes()).await.unwrap();
        held.push(c);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = Instant::now();
    let (p50, p99) = preview_latency(&client, &b, &key, 200).await;
    let first = t.elapsed();
    println!("\nstalled clients (600 uploads stalled after 2 bytes + 600 unread 8 MiB downloads)");
    row(
        "preview p50 beside them (ms) vs idle server",
        p50,
        idle_p50,
        "",
    );
    row(
        "preview p99 beside them (ms) vs idle server",
        p99,
        idle_p99,
        "",
    );
    println!(
        "{:<52} {:>10.1}ms",
        "200 previews beside them, total",
        ms(first)
    );
    if let Some(rss) = peak_rss_mib(server.child.id()) {
        println!("{:<52} {rss:>10.1}MiB", "server peak RSS");
    }
    drop(held);
}

/// Listing a bucket of many tables (BENCH_TABLES, 10 000 by default) after a restart, beside
/// GET /healthz: the list is served from the catalog and opens no table file (target < 50 ms).
async fn catalog_bench(root: &Path) {
    let tables: usize = std::env::var("BENCH_TABLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let server_dir = root.join("catalog-server");
    let client = reqwest::Client::new();
    let mut server = start(&server_dir).await;
    let key = project_with_bucket(&client, &server.base).await;
    server.stop();

    // The tables are made through the library (the same service calls the routes make,
    // without HTTP), then the server binary starts on the data dir.
    let made = Instant::now();
    let config = duckbank::Config {
        data_dir: server_dir.join("data"),
        admin_api_key: Some(duckbank::config::Secret::new(ADMIN)),
        ..duckbank::Config::default()
    };
    let state = tokio::task::spawn_blocking(move || duckbank::AppState::open(config))
        .await
        .unwrap()
        .expect("open the data dir");
    let project = duckbank::names::ProjectId::parse("1").unwrap();
    let bucket = duckbank::names::BucketName::parse("b").unwrap();
    let columns = |i: usize| {
        [
            "id BIGINT",
            "name VARCHAR",
            "amount DECIMAL(12,2)",
            "ts TIMESTAMP",
        ]
        .iter()
        .map(|c| {
            let (name, ty) = c.split_once(' ').unwrap();
            duckbank::engine::ddl::ColumnDef {
                name: duckbank::names::ColumnName::parse(&format!("{name}{}", i % 3)).unwrap(),
                data_type: duckbank::types::ColumnType::parse(ty).unwrap(),
                nullable: true,
                default: None,
            }
        })
        .collect::<Vec<_>>()
    };
    futures_util::stream::iter(0..tables)
        .map(|i| {
            let (state, project, bucket) = (&state, project.clone(), bucket.clone());
            async move {
                let name = duckbank::names::TableName::parse(&format!("t{i:05}")).unwrap();
                duckbank::service::tables::create(
                    state,
                    project,
                    &duckbank::names::BranchId::Default,
                    bucket,
                    name,
                    columns(i),
                    vec![],
                )
                .await
                .expect("create table");
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    // What the server's cleaner does now and then: fold in the WAL of tables whose checkpoint
    // DuckDB refused while other creates were running.
    let state = tokio::task::spawn_blocking(move || {
        duckbank::service::tables::restamp_unfolded(&state);
        state
    })
    .await
    .unwrap();
    drop(state);
    let made = made.elapsed();

    let started = Instant::now();
    let server = start(&server_dir).await;
    let startup = started.elapsed();
    let b = server.base.clone();
    let at_start = send(
        &client,
        reqwest::Method::GET,
        format!("{b}/admin/engine"),
        ADMIN,
        None,
    )
    .await;
    // The project key is verified (argon2) once, before anything is timed.
    send(
        &client,
        reqwest::Method::GET,
        format!("{b}/projects/1/buckets"),
        &key,
        None,
    )
    .await;
    let url = format!("{b}/projects/1/buckets/b/tables");
    let t = Instant::now();
    let first = send(&client, reqwest::Method::GET, url.clone(), &key, None).await;
    let first_list = t.elapsed();
    assert_eq!(first["total"], tables);
    // Timed to the last byte of the body, not parsed (the client's JSON parsing of a 10k-table
    // list would dominate the figure).
    let mut lat = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let res = client.get(&url).bearer_auth(&key).send().await.unwrap();
        assert!(res.status().is_success());
        std::hint::black_box(res.bytes().await.unwrap());
        lat.push(t.elapsed());
    }
    let list = median(lat);
    let mut lat = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        client
            .get(format!("{b}/healthz"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        lat.push(t.elapsed());
    }
    let healthz = median(lat);
    let engine = send(
        &client,
        reqwest::Method::GET,
        format!("{b}/admin/engine"),
        ADMIN,
        None,
    )
    .await;
    let rss = peak_rss_mib(server.child.id());

    println!(
        "catalog: a bucket of {tables} tables (made in {:.1} s through the library)",
        made.as_secs_f64()
    );
    println!(
        "{:<52} {:>11} {:>11} {:>8}",
        "measure", "duckbank", "baseline", "ratio"
    );
    row(
        "list 10k-table bucket, first after restart ms (/healthz)",
        ms(first_list),
        ms(healthz),
        "",
    );
    row(
        "list 10k-table bucket median ms (/healthz)",
        ms(list),
        ms(healthz),
        "",
    );
    println!(
        "server start {:.2} s; tables to read again at start: {}; attached after the lists: {}; peak RSS {} MiB",
        startup.as_secs_f64(),
        at_start["tables_without_figures"],
        engine["attached_tables"],
        rss.map_or("?".to_string(), |r| format!("{r:.0}"))
    );
}

/// Bucket list load, preview and create-table figures.
async fn api_bench(root: &Path) {
    let server_dir = root.join("api-server");
    let secs = bench_secs();
    let client = reqwest::Client::new();

    // Set-up: a project with a bucket and a 10 000-row table.
    let mut server = start(&server_dir).await;
    let b = server.base.clone();
    let key = project_with_bucket(&client, &b).await;
    let columns = json!([
        {"name": "id", "type": "BIGINT", "nullable": false},
        {"name": "name", "type": "VARCHAR"},
        {"name": "amount", "type": "DECIMAL(12,2)"},
        {"name": "ts", "type": "TIMESTAMP"},
        {"name": "flag", "type": "BOOLEAN"}
    ]);
    send(
        &client,
        reqwest::Method::POST,
        format!("{b}/projects/1/buckets/b/tables"),
        &key,
        Some(json!({"name": "big", "columns": columns, "primary_key": ["id"]})),
    )
    .await;
    server.stop();
    let fill = "INSERT INTO main.data SELECT i, 'name ' || i, (i * 1.25)::DECIMAL(12,2), \
                TIMESTAMP '2024-01-01' + INTERVAL (i) SECOND, i % 2 = 0 FROM range(10000) r(i)";
    let table_file = server_dir.join("data/duckdb/project_1/b/big.duckdb");
    duckdb::Connection::open(&table_file)
        .unwrap()
        .execute_batch(fill)
        .unwrap();
    let baseline_file = root.join("baseline.duckdb");
    std::fs::copy(&table_file, &baseline_file).unwrap();

    let mut server = server.restart().await;
    let b = server.base.clone();
    send(
        &client,
        reqwest::Method::GET,
        format!("{b}/projects/1/buckets"),
        &key,
        None,
    )
    .await;

    // 1. Authenticated bucket list vs unauthenticated liveness, same server, same client.
    let (base_rps, base_p50, base_p99) = load(&b, "/healthz", None, secs).await;
    let (rps, p50, p99) = load(&b, "/projects/1/buckets", Some(&key), secs).await;
    // /health answers from background checks: it should cost about what /healthz does.
    let (health_rps, health_p50, _) = load(&b, "/health", None, secs).await;

    let wrk_figures =
        wrk(&b, "/healthz", None, secs).zip(wrk(&b, "/projects/1/buckets", Some(&key), secs));

    // 2. Preview of 1 000 rows vs the same query on a raw DuckDB connection.
    let mut lat = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let v = send(
            &client,
            reqwest::Method::GET,
            format!("{b}/projects/1/buckets/b/tables/big/preview?limit=1000"),
            &key,
            None,
        )
        .await;
        lat.push(t.elapsed());
        assert_eq!(v["preview_row_count"], 1000);
    }
    let preview = median(lat);
    let raw = duckdb::Connection::open(&baseline_file).unwrap();
    let mut lat = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let mut stmt = raw
            .prepare_cached("SELECT * FROM main.data LIMIT 1000")
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut n = 0;
        while let Some(r) = rows.next().unwrap() {
            for i in 0..5 {
                std::hint::black_box(r.get_ref(i).unwrap());
            }
            n += 1;
        }
        assert_eq!(n, 1000);
        lat.push(t.elapsed());
    }
    let raw_preview = median(lat);

    // 3. Create table vs raw DuckDB creating one file with one table.
    let mut lat = Vec::new();
    for i in 0..50 {
        let t = Instant::now();
        send(
            &client,
            reqwest::Method::POST,
            format!("{b}/projects/1/buckets/b/tables"),
            &key,
            Some(json!({"name": format!("c{i}"), "columns": columns, "primary_key": ["id"]})),
        )
        .await;
        lat.push(t.elapsed());
    }
    let create = median(lat);
    let mut lat = Vec::new();
    for i in 0..50 {
        let t = Instant::now();
        let c = duckdb::Connection::open(root.join(format!("raw{i}.duckdb"))).unwrap();
        c.execute_batch("CREATE TABLE data (id BIGINT NOT NULL, name VARCHAR, amount DECIMAL(12,2), ts TIMESTAMP, flag BOOLEAN, PRIMARY KEY (id)); CHECKPOINT").unwrap();
        drop(c);
        lat.push(t.elapsed());
    }
    let raw_create = median(lat);
    server.stop();

    println!("duckbank benchmark ({CONNECTIONS} connections, {secs}s per load run)");
    println!(
        "{:<44} {:>12} {:>12} {:>12}",
        "measure", "duckbank", "baseline", "ratio"
    );
    println!(
        "{:<44} {:>12.0} {:>12.0} {:>12.2}",
        "bucket list req/s (baseline: GET /healthz)",
        rps,
        base_rps,
        rps / base_rps
    );
    println!(
        "{:<44} {:>12.2} {:>12.2} {:>12.2}",
        "bucket list p50 ms",
        ms(p50),
        ms(base_p50),
        ms(p50) / ms(base_p50)
    );
    println!(
        "{:<44} {:>12.2} {:>12.2} {:>12.2}",
        "bucket list p99 ms",
        ms(p99),
        ms(base_p99),
        ms(p99) / ms(base_p99)
    );
    println!(
        "{:<44} {:>12.0} {:>12.0} {:>12.2}",
        "/health req/s (baseline: GET /healthz)",
        health_rps,
        base_rps,
        health_rps / base_rps
    );
    println!(
        "{:<44} {:>12.2} {:>12.2} {:>12.2}",
        "/health p50 ms",
        ms(health_p50),
        ms(base_p50),
        ms(health_p50) / ms(base_p50)
    );
    if let Some(((brps, bp50, bp99), (rps, p50, p99))) = wrk_figures {
        println!(
            "{:<44} {:>12.0} {:>12.0} {:>12.2}",
            "wrk: bucket list req/s (baseline: /healthz)",
            rps,
            brps,
            rps / brps
        );
        println!(
            "{:<44} {:>12.2} {:>12.2} {:>12.2}",
            "wrk: bucket list p50 ms",
            p50,
            bp50,
            p50 / bp50
        );
        println!(
            "{:<44} {:>12.2} {:>12.2} {:>12.2}",
            "wrk: bucket list p99 ms",
            p99,
            bp99,
            p99 / bp99
        );
    } else {
        println!("(wrk not installed: install it for a load figure without client overhead)");
    }
    println!(
        "{:<44} {:>12.2} {:>12.2} {:>12.2}",
        "preview 1000 rows median ms (baseline: raw)",
        ms(preview),
        ms(raw_preview),
        ms(preview) / ms(raw_preview)
    );
    println!(
        "{:<44} {:>12.2} {:>12.2} {:>12.2}",
        "create table median ms (baseline: raw)",
        ms(create),
        ms(raw_create),
        ms(create) / ms(raw_create)
    );
}

/// Rows of the generated import data (BENCH_ROWS; 1 M by default).
fn bench_rows() -> u64 {
    std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// Writes `rows` rows starting at id `first` as CSV with DuckDB (the same generator feeds
/// both duckbank and the raw baseline).
fn generate_csv(path: &Path, first: u64, rows: u64, salt: &str) {
    let sql = format!(
        "COPY (SELECT i AS id, 'name {salt} ' || i AS name, (i * 1.25 % 100000)::DECIMAL(12,2) AS amount, \
         TIMESTAMP '2024-01-01' + INTERVAL (i) SECOND AS ts, i % 2 = 0 AS flag \
         FROM range({first}, {}) r(i)) TO '{}' (FORMAT csv, HEADER true)",
        first + rows,
        path.display()
    );
    duckdb::Connection::open_in_memory()
        .unwrap()
        .execute_batch(&sql)
        .unwrap();
}

const DATA_DDL: &str =
    "CREATE TABLE data (id BIGINT NOT NULL, name VARCHAR, amount DECIMAL(12,2), \
                        ts TIMESTAMP, flag BOOLEAN, PRIMARY KEY (id))";

/// Raw DuckDB: a fresh table file with the same schema, `COPY … FROM` the CSV, closed.
fn raw_copy(dir: &Path, name: &str, csv: &Path) -> Duration {
    let file = dir.join(format!("{name}.duckdb"));
    let _ = std::fs::remove_file(&file);
    let c = duckdb::Connection::open(&file).unwrap();
    c.execute_batch(DATA_DDL).unwrap();
    let t = Instant::now();
    c.execute_batch(&format!("COPY data FROM '{}' (HEADER true)", csv.display()))
        .unwrap();
    drop(c);
    t.elapsed()
}

async fn upload_file(client: &reqwest::Client, b: &str, key: &str, bytes: Vec<u8>) -> String {
    let res = client
        .post(format!("{b}/projects/1/files/content?name=data.csv"))
        .bearer_auth(key)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "upload {}", res.status());
    let v: Value = res.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

async fn import(
    client: &reqwest::Client,
    b: &str,
    key: &str,
    table: &str,
    file_id: &str,
    incremental: bool,
) -> Value {
    send(
        client,
        reqwest::Method::POST,
        format!("{b}/projects/1/buckets/b/tables/{table}/import/file"),
        key,
        Some(json!({"file_id": file_id, "format": "csv",
                    "import_options": {"incremental": incremental}})),
    )
    .await
}

async fn create_data_table(client: &reqwest::Client, b: &str, key: &str, name: &str) {
    send(
        client,
        reqwest::Method::POST,
        format!("{b}/projects/1/buckets/b/tables"),
        key,
        Some(json!({"name": name, "primary_key": ["id"], "columns": [
            {"name": "id", "type": "BIGINT", "nullable": false},
            {"name": "name", "type": "VARCHAR"},
            {"name": "amount", "type": "DECIMAL(12,2)"},
            {"name": "ts", "type": "TIMESTAMP"},
            {"name": "flag", "type": "BOOLEAN"}]})),
    )
    .await;
}

fn row(name: &str, ours: f64, base: f64, unit: &str) {
    println!(
        "{:<52} {:>10.3}{unit} {:>10.3}{unit} {:>8.2}",
        name,
        ours,
        base,
        ours / base
    );
}

/// Raw DuckDB loading the same file into 8 table files of one instance, one after another
/// and then from 8 threads at once: the parallelism this machine allows at all.
fn raw_eight(dir: &Path, csv: &Path) -> (Duration, Duration) {
    let root = duckdb::Connection::open_in_memory().unwrap();
    for run in ["rs", "rp"] {
        for i in 0..8 {
            let file = dir.join(format!("{run}{i}.duckdb"));
            let _ = std::fs::remove_file(&file);
            root.execute_batch(&format!(
                "ATTACH '{}' AS {run}{i}; CREATE TABLE {run}{i}.{}",
                file.display(),
                &DATA_DDL["CREATE TABLE ".len()..]
            ))
            .unwrap();
        }
    }
    let load = |conn: &duckdb::Connection, db: &str| {
        conn.execute_batch(&format!(
            "INSERT INTO {db}.data SELECT * FROM read_csv('{}', header=true)",
            csv.display()
        ))
        .unwrap();
    };
    let t = Instant::now();
    for i in 0..8 {
        load(&root, &format!("rs{i}"));
    }
    let serial = t.elapsed();
    let t = Instant::now();
    std::thread::scope(|scope| {
        for i in 0..8 {
            let conn = root.try_clone().unwrap();
            scope.spawn(move || load(&conn, &format!("rp{i}")));
        }
    });
    (serial, t.elapsed())
}

/// Import, upsert, export and parallel-import figures against raw DuckDB on the same data.
async fn data_bench(dir: &Path) {
    let rows = bench_rows();
    let work = dir.join("data-bench");
    std::fs::create_dir_all(&work).unwrap();
    let full_csv = work.join("full.csv");
    generate_csv(&full_csv, 0, rows, "a");
    // The upsert file overlaps the loaded rows by half of its own size.
    let upsert_rows = rows / 10;
    let upsert_csv = work.join("upsert.csv");
    generate_csv(&upsert_csv, rows - upsert_rows / 2, upsert_rows, "b");
    let part_rows = rows / 4;
    let part_csv = work.join("part.csv");
    generate_csv(&part_csv, 0, part_rows, "c");

    let client = reqwest::Client::new();
    let mut server = start(&work.join("server")).await;
    let b = server.base.clone();
    let key = project_with_bucket(&client, &b).await;

    // 1. Full import: raw COPY into a fresh file vs upload + import into a fresh table.
    let mut raw = Vec::new();
    let mut upload_only = Vec::new();
    let mut import_only = Vec::new();
    let mut end_to_end = Vec::new();
    for i in 0..3 {
        raw.push(raw_copy(&work, &format!("raw{i}"), &full_csv));
        let table = format!("full{i}");
        create_data_table(&client, &b, &key, &table).await;
        // The client's own read of the file stays outside the timing.
        let bytes = std::fs::read(&full_csv).unwrap();
        let t = Instant::now();
        let file_id = upload_file(&client, &b, &key, bytes).await;
        let uploaded = t.elapsed();
        let t2 = Instant::now();
        let out = import(&client, &b, &key, &table, &file_id, false).await;
        import_only.push(t2.elapsed());
        end_to_end.push(t.elapsed());
        upload_only.push(uploaded);
        assert_eq!(out["table_rows_after"], rows);
    }
    let raw_copy_time = median(raw);

    // 2. Incremental upsert of 10% of the rows, half of them new.
    let mut raw = Vec::new();
    for i in 0..3 {
        let c = duckdb::Connection::open(work.join(format!("raw{i}.duckdb"))).unwrap();
        let t = Instant::now();
        c.execute_batch(&format!(
            "INSERT INTO data SELECT * FROM read_csv('{}', header=true) ON CONFLICT (id) DO UPDATE SET \
             name = EXCLUDED.name, amount = EXCLUDED.amount, ts = EXCLUDED.ts, flag = EXCLUDED.flag",
            upsert_csv.display()
        ))
        .unwrap();
        drop(c);
        raw.push(t.elapsed());
    }
    let upsert_id = upload_file(&client, &b, &key, std::fs::read(&upsert_csv).unwrap()).await;
    let mut ours = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        let out = import(&client, &b, &key, &format!("full{i}"), &upsert_id, true).await;
        ours.push(t.elapsed());
        assert_eq!(out["table_rows_after"], rows + upsert_rows / 2);
    }
    let (upsert, raw_upsert) = (median(ours), median(raw));

    // 3. Export to CSV: raw COPY TO vs POST export + download, and the streamed GET export.
    let mut raw = Vec::new();
    for i in 0..3 {
        let c = duckdb::Connection::open(work.join(format!("raw{i}.duckdb"))).unwrap();
        let out = work.join("raw-export.csv");
        let t = Instant::now();
        c.execute_batch(&format!("COPY data TO '{}' (HEADER true)", out.display()))
            .unwrap();
        raw.push(t.elapsed());
    }
    let mut ours = Vec::new();
    let mut streamed = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        let out = send(
            &client,
            reqwest::Method::POST,
            format!("{b}/projects/1/buckets/b/tables/full{i}/export"),
            &key,
            Some(json!({"format": "csv"})),
        )
        .await;
        let id = out["file_id"].as_str().unwrap();
        let n = drain(
            &client,
            &format!("{b}/projects/1/files/{id}/download"),
            Some(&key),
        )
        .await;
        ours.push(t.elapsed());
        assert_eq!(n, out["file_size_bytes"].as_u64().unwrap());
        let t = Instant::now();
        drain(
            &client,
            &format!("{b}/projects/1/buckets/b/tables/full{i}/export?format=csv"),
            Some(&key),
        )
        .await;
        streamed.push(t.elapsed());
    }
    let (export, stream, raw_export) = (median(ours), median(streamed), median(raw));

    // 4. Eight imports into eight tables: one after another, then all at once, while a
    //    prober measures /health and previews of another table.
    // Both runs load into empty tables of their own.
    for i in 0..8 {
        create_data_table(&client, &b, &key, &format!("s{i}")).await;
        create_data_table(&client, &b, &key, &format!("p{i}")).await;
    }
    let part_id = upload_file(&client, &b, &key, std::fs::read(&part_csv).unwrap()).await;
    let t = Instant::now();
    for i in 0..8 {
        import(&client, &b, &key, &format!("s{i}"), &part_id, false).await;
    }
    let serial = t.elapsed();
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (client, b, key, stop) = (client.clone(), b.clone(), key.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut health, mut preview) = (Vec::new(), Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = client.get(format!("{b}/health")).send().await.unwrap();
                assert!(r.status().is_success());
                health.push(t.elapsed());
                let t = Instant::now();
                let r = client
                    .get(format!(
                        "{b}/projects/1/buckets/b/tables/full0/preview?limit=100"
                    ))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
                let _ = r.bytes().await;
                preview.push(t.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (health, preview)
        })
    };
    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (client, b, key, id) = (client.clone(), b.clone(), key.clone(), part_id.clone());
        tasks.push(tokio::spawn(async move {
            import(&client, &b, &key, &format!("p{i}"), &id, false).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap()["table_rows_after"], part_rows);
    }
    let parallel = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (health, preview) = prober.await.unwrap();
    server.stop();
    let (raw_serial, raw_parallel) = raw_eight(&work, &part_csv);
    let worst = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    let p99 = |mut v: Vec<Duration>| {
        v.sort();
        v.get((v.len() * 99 / 100).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };

    println!();
    println!("data benchmark ({rows} rows: id BIGINT PK, name, amount DECIMAL(12,2), ts, flag)");
    println!(
        "{:<52} {:>11} {:>11} {:>8}",
        "measure (medians of 3)", "duckbank", "baseline", "ratio"
    );
    let s = |d: Duration| d.as_secs_f64();
    row(
        "full import only, s (baseline: raw COPY FROM)",
        s(median(import_only)),
        s(raw_copy_time),
        "",
    );
    row(
        "upload + full import, s (baseline: raw COPY FROM)",
        s(median(end_to_end)),
        s(raw_copy_time),
        "",
    );
    println!(
        "{:<52} {:>10.3}",
        "  of which upload, s",
        s(median(upload_only))
    );
    row(
        "upsert 10% rows (half new), s (baseline: raw)",
        s(upsert),
        s(raw_upsert),
        "",
    );
    row(
        "export CSV + download, s (baseline: raw COPY TO)",
        s(export),
        s(raw_export),
        "",
    );
    row(
        "streamed GET export CSV, s (baseline: raw COPY TO)",
        s(stream),
        s(raw_export),
        "",
    );
    row(
        "8 imports parallel, s (baseline: serial)",
        s(parallel),
        s(serial),
        "",
    );
    println!(
        "{:<52} {:>10.2}x",
        "  speed-up parallel over serial",
        s(serial) / s(parallel)
    );
    println!(
        "{:<52} {:>10.2}x ({:.3} s serial, {:.3} s parallel)",
        "  raw DuckDB, same 8 loads: speed-up",
        s(raw_serial) / s(raw_parallel),
        s(raw_serial),
        s(raw_parallel)
    );
    println!(
        "{:<52} {:>10.1} ms p99, {:.1} ms max ({} probes)",
        "  /health during parallel imports",
        ms(p99(health.clone())),
        ms(worst(&health)),
        health.len()
    );
    println!(
        "{:<52} {:>10.1} ms p99, {:.1} ms max ({} probes)",
        "  preview of another table during imports",
        ms(p99(preview.clone())),
        ms(worst(&preview)),
        preview.len()
    );
}

/// Resident memory of a process now, from /proc (VmRSS), in MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Concurrent clients sending made-up keys for an existing project in the auth benchmark.
const FLOOD_CLIENTS: usize = 500;

/// What one measuring run saw: preview latencies, the largest RSS sample, and the flood's
/// answers (401, 429, anything else or a failed request).
struct AuthRun {
    preview: Vec<Duration>,
    max_rss: f64,
    answers: [u64; 3],
}

/// Previews with a valid (cached) key every 20 ms for `secs` while sampling the server's RSS,
/// with `flood` clients sending random secrets for project 1 meanwhile (0: no flood).
async fn auth_run(server: &ServerProcess, key: &str, secs: u64, flood: usize) -> AuthRun {
    let b = server.base.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let flood_client = reqwest::Client::new();
    let mut flooders = Vec::new();
    for _ in 0..flood {
        let (client, url, stop) = (
            flood_client.clone(),
            format!("{b}/projects/1/buckets"),
            stop.clone(),
        );
        flooders.push(tokio::spawn(async move {
            let mut answers = [0u64; 3];
            while !stop.load(Ordering::Relaxed) {
                let guess = format!("proj_1_admin_{:032x}", rand::random::<u128>());
                let slot = match client.get(&url).bearer_auth(guess).send().await {
                    Ok(res) if res.status() == 401 => 0,
                    Ok(res) if res.status() == 429 => 1,
                    _ => 2,
                };
                answers[slot] += 1;
            }
            answers
        }));
    }
    let sampler = {
        let (pid, stop) = (server.child.id(), stop.clone());
        tokio::spawn(async move {
            let mut max = 0f64;
            while !stop.load(Ordering::Relaxed) {
                max = max.max(rss_mib(pid).unwrap_or(0.0));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            max
        })
    };
    // The prober has a thread and runtime of its own: queued behind the flood's tasks in this
    // process, it would time the benchmark's client instead of the server.
    let (url, key) = (
        format!("{b}/projects/1/buckets/b/tables/t/preview?limit=100"),
        key.to_string(),
    );
    let preview = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = reqwest::Client::new();
            let mut preview = Vec::new();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(secs) {
                let t = Instant::now();
                let res = client.get(&url).bearer_auth(&key).send().await.unwrap();
                assert!(res.status().is_success(), "preview {}", res.status());
                let _ = res.bytes().await;
                preview.push(t.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            preview
        })
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut answers = [0u64; 3];
    for f in flooders {
        for (total, n) in answers.iter_mut().zip(f.await.unwrap()) {
            *total += n;
        }
    }
    let max_rss = sampler.await.unwrap();
    AuthRun {
        preview,
        max_rss,
        answers,
    }
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get((v.len() * 99 / 100).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

/// How long rejecting a made-up key takes, sequentially (no queue): keys for project 1, which
/// exists, beside keys for project 99, which does not; medians of `rounds` each.
async fn reject_times(server: &ServerProcess, rounds: u64) -> (Duration, Duration) {
    let client = reqwest::Client::new();
    let (mut wrong_secret, mut unknown_project) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        for (project, times) in [("1", &mut wrong_secret), ("99", &mut unknown_project)] {
            let guess = format!("proj_{project}_admin_{:032x}", u128::from(i) + 1);
            let t = Instant::now();
            let res = client
                .get(server.url(&format!("/projects/{project}/buckets")))
                .bearer_auth(guess)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 401);
            times.push(t.elapsed());
        }
    }
    (median(unknown_project), median(wrong_secret))
}

/// A flood of made-up keys for an existing project: preview latency with a valid key and
/// server memory, beside the same without a flood; once with the default limits and once with
/// guess throttling off (only the verification pool bounds the work); and the rejection time
/// of an unknown project beside a wrong secret.
async fn auth_bench(root: &Path) {
    let secs = bench_secs();
    let client = reqwest::Client::new();
    let csv = root.join("auth.csv");
    generate_csv(&csv, 0, 1000, "auth");
    let mut runs = Vec::new();
    let mut rejects = None;
    for (name, failures_per_minute) in [("default limits", None), ("throttle off", Some("0"))] {
        let dir = root.join(format!("auth-server-{}", runs.len()));
        let mut env = vec![("ADMIN_API_KEY", ADMIN), ("RUST_LOG", "warn")];
        if let Some(n) = failures_per_minute {
            env.push(("AUTH_FAILURES_PER_MINUTE", n));
        }
        let mut server = ServerProcess::start_in(&dir, &env).await;
        let b = server.base.clone();
        let key = project_with_bucket(&client, &b).await;
        create_data_table(&client, &b, &key, "t").await;
        let file_id = upload_file(&client, &b, &key, std::fs::read(&csv).unwrap()).await;
        import(&client, &b, &key, "t", &file_id, false).await;
        let quiet = auth_run(&server, &key, secs, 0).await;
        let flood = auth_run(&server, &key, secs, FLOOD_CLIENTS).await;
        if failures_per_minute.is_some() {
            rejects = Some(reject_times(&server, 40).await);
        }
        server.stop();
        runs.push((name, quiet, flood));
    }

    println!();
    println!(
        "auth benchmark ({FLOOD_CLIENTS} clients sending random secrets for an existing project, \
         {secs}s per run; previews of 100 rows every 20 ms with a valid key)"
    );
    println!(
        "{:<52} {:>11} {:>11} {:>8}",
        "measure", "flood", "no flood", "ratio"
    );
    for (name, quiet, flood) in runs {
        row(
            &format!("preview p99 ms, {name}"),
            ms(p99(flood.preview.clone())),
            ms(p99(quiet.preview.clone())),
            "",
        );
        row(
            &format!("server max RSS MiB, {name}"),
            flood.max_rss,
            quiet.max_rss,
            "",
        );
        let [unauthorized, limited, other] = flood.answers;
        println!(
            "{:<52} {:>10} x 401, {} x 429, {} other or failed ({} previews)",
            format!("  flood answers, {name}"),
            unauthorized,
            limited,
            other,
            flood.preview.len()
        );
    }
    if let Some((unknown, wrong)) = rejects {
        row(
            "reject unknown project median ms (baseline: wrong secret)",
            ms(unknown),
            ms(wrong),
            "",
        );
    }
}
