//! Issue 17's figures: an object through `/s3` (multipart PUT, GET) vs the same bytes through
//! the Files API's own upload/download, in one run; with boto3 too when a python has it.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde_json::json;

use super::{create_project, drain, helpers, send, start, ServerProcess};

/// Parts in flight at once, as aws-cli's and boto3's transfer managers do by default (10 and
/// 10); 4 here, the machine has two cores.
const PARALLEL_PARTS: usize = 4;
/// Rounds per figure; the figure is the ratio of medians.
const ROUNDS: usize = 3;

pub async fn s3_bench(root: &Path, mib: usize, part_mib: usize) {
    let len = mib * 1024 * 1024;
    let data = helpers::bytes_of(len, 7);
    let server = start(&root.join("s3-server")).await;
    let b = server.base.clone();
    let client = reqwest::Client::new();
    let key = create_project(&client, &b, "s").await;

    let mut rows: Vec<(String, Vec<Duration>, Vec<Duration>)> = Vec::new();
    let (mut files_up, mut s3_up, mut files_down, mut s3_down) = (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        // Different bytes per round and path: nothing is deduplicated.
        let mut ours = data.clone();
        ours[0] = round as u8;
        ours[1] = 1;
        let mut theirs = data.clone();
        theirs[0] = round as u8;
        theirs[1] = 2;
        let (ours, theirs) = (bytes::Bytes::from(ours), bytes::Bytes::from(theirs));

        // The two uploads take turns going first: the disk's write-back of one must not
        // always fall on the other.
        let object = format!("{b}/s3/project_s/bench/{round}.bin");
        let mut id = String::new();
        for turn in 0..2 {
            if (turn + round) % 2 == 0 {
                let t = Instant::now();
                let res = client
                    .post(format!(
                        "{b}/projects/s/files/content?name=files-{round}.bin"
                    ))
                    .bearer_auth(&key)
                    .body(theirs.clone())
                    .send()
                    .await
                    .expect("upload");
                files_up.push(t.elapsed());
                assert_eq!(res.status(), 201, "files upload failed");
                let file: serde_json::Value = res.json().await.unwrap();
                id = file["id"].as_str().unwrap().to_string();
            } else {
                let t = Instant::now();
                multipart_put(&client, &key, &object, ours.clone(), part_mib * 1024 * 1024).await;
                s3_up.push(t.elapsed());
            }
        }

        let t = Instant::now();
        let n = drain(
            &client,
            &format!("{b}/projects/s/files/{id}/download"),
            Some(&key),
        )
        .await;
        files_down.push(t.elapsed());
        assert_eq!(n as usize, len);
        let t = Instant::now();
        let n = drain(&client, &object, Some(&key)).await;
        s3_down.push(t.elapsed());
        assert_eq!(n as usize, len);
    }
    rows.push((
        format!("{mib} MiB up: /s3 multipart {part_mib} MiB parts x{PARALLEL_PARTS} vs files"),
        s3_up,
        files_up,
    ));
    rows.push((
        format!("{mib} MiB down: /s3 GET vs files"),
        s3_down,
        files_down,
    ));
    for (name, ours, base) in rows {
        let fmt = |v: &[Duration]| {
            v.iter()
                .map(|d| format!("{:.2}", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join("/")
        };
        let median = |v: &[Duration]| {
            let mut v = v.to_vec();
            v.sort();
            v[v.len() / 2].as_secs_f64()
        };
        // Throughput ratio of the medians: ≥ 1 means /s3 is at least as fast as the Files API.
        println!(
            "{name:<60} {:>16} s {:>16} s {:>8.2}",
            fmt(&ours),
            fmt(&base),
            median(&base) / median(&ours)
        );
    }
    boto3_figure(root, &b, &client, &key, &data).await;
    let mut server = listing_figure(server, &key).await;
    server.stop();
}

/// ListObjectsV2 over BENCH_S3_KEYS (100 000) keys in pages of 1 000: every key exactly once,
/// and what a page costs next to a HEAD of one object (the cheapest S3 call, same run). The
/// keys are records written into the stopped server's catalog (1 000 of them through PUTs
/// first, to show what writing them costs): 100 000 PUTs of a few ms each would take minutes.
async fn listing_figure(server: ServerProcess, key: &str) -> ServerProcess {
    let count: usize = std::env::var("BENCH_S3_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let (b, client) = (server.base.clone(), server.client.clone());
    let put_sample = count.min(1000);
    let t = Instant::now();
    stream::iter(0..put_sample)
        .map(|i| {
            let url = format!("{b}/s3/project_s/many/{:02}/{i:07}", i % 100);
            let client = &client;
            async move {
                let res = client
                    .put(url)
                    .bearer_auth(key)
                    .body(i.to_string())
                    .send()
                    .await
                    .expect("put");
                assert_eq!(res.status(), 200);
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let per_put = t.elapsed().as_secs_f64() * 1000.0 / put_sample as f64;
    let mut server = server;
    server.stop();
    {
        let catalog = duckdb::Connection::open(server.dir().join("data/metadata.duckdb"))
            .expect("open catalog");
        catalog
            .execute(
                "INSERT INTO files SELECT uuid()::VARCHAR, project_id, \
                 printf('many/%02d/%07d', i % 100, i), sha256, size_bytes, content_type, tags, \
                 client_id, created_at FROM files, range(?, ?) t(i) \
                 WHERE name = 'many/00/0000000'",
                duckdb::params![put_sample as i64, count as i64],
            )
            .expect("seed the keys");
    }
    let server = server.restart().await;
    let (b, client) = (server.base.clone(), server.client.clone());

    let mut seen = std::collections::HashSet::with_capacity(count);
    let (mut pages, mut token) = (0usize, None::<String>);
    let t = Instant::now();
    loop {
        let cont = token
            .as_ref()
            .map(|t| format!("&continuation-token={t}"))
            .unwrap_or_default();
        let xml = client
            .get(format!(
                "{b}/s3/project_s?list-type=2&prefix=many%2F&max-keys=1000{cont}"
            ))
            .bearer_auth(key)
            .send()
            .await
            .expect("list")
            .text()
            .await
            .expect("list body");
        pages += 1;
        for contents in xml.split("<Contents>").skip(1) {
            let k = between(contents, "<Key>", "</Key>");
            assert!(seen.insert(k), "a key was listed twice");
        }
        token = xml
            .contains("<NextContinuationToken>")
            .then(|| between(&xml, "<NextContinuationToken>", "</NextContinuationToken>"));
        if token.is_none() {
            break;
        }
    }
    let list = t.elapsed();
    assert_eq!(seen.len(), count, "every key listed once");
    let head_url = format!("{b}/s3/project_s/many/00/0000000");
    let t = Instant::now();
    for _ in 0..pages {
        let res = client
            .head(&head_url)
            .bearer_auth(key)
            .send()
            .await
            .expect("head");
        assert_eq!(res.status(), 200);
    }
    let head = t.elapsed();
    let per_page = list.as_secs_f64() * 1000.0 / pages as f64;
    let per_head = head.as_secs_f64() * 1000.0 / pages as f64;
    println!(
        "{:<60} {:>10.1} ms {:>10.2} ms {:>8.1}",
        format!("ListObjectsV2 {count} keys, {pages} pages of 1000: page vs HEAD"),
        per_page,
        per_head,
        per_page / per_head
    );
    println!(
        "{:<60} {:>10} {:>10.2} ms",
        "  every key listed exactly once; one small PUT took", "yes", per_put
    );
    server
}

/// Create, parts `PARALLEL_PARTS` at a time, Complete: what an SDK's transfer manager does.
async fn multipart_put(
    client: &reqwest::Client,
    key: &str,
    object: &str,
    data: bytes::Bytes,
    part: usize,
) {
    let created = client
        .post(format!("{object}?uploads"))
        .bearer_auth(key)
        .send()
        .await
        .expect("create multipart");
    assert_eq!(created.status(), 200);
    let text = created.text().await.unwrap();
    let upload = between(&text, "<UploadId>", "</UploadId>");
    let chunks: Vec<(usize, bytes::Bytes)> = (0..data.len().div_ceil(part))
        .map(|i| {
            (
                i + 1,
                data.slice(i * part..((i + 1) * part).min(data.len())),
            )
        })
        .collect();
    let etags: Vec<(usize, String)> = stream::iter(chunks)
        .map(|(n, body)| {
            let url = format!("{object}?partNumber={n}&uploadId={upload}");
            async move {
                let res = client
                    .put(url)
                    .bearer_auth(key)
                    .body(body)
                    .send()
                    .await
                    .expect("upload part");
                assert_eq!(res.status(), 200, "part {n}");
                let etag = res.headers()["etag"].to_str().unwrap().to_string();
                (n, etag)
            }
        })
        .buffered(PARALLEL_PARTS)
        .collect()
        .await;
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (n, etag) in etags {
        xml.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    let done = client
        .post(format!("{object}?uploadId={upload}"))
        .bearer_auth(key)
        .body(xml)
        .send()
        .await
        .expect("complete");
    let status = done.status();
    let text = done.text().await.unwrap();
    assert!(status == 200 && text.contains("<ETag>"), "{status} {text}");
}

fn between(text: &str, open: &str, close: &str) -> String {
    let start = text.find(open).expect("opening tag") + open.len();
    let end = text[start..].find(close).expect("closing tag") + start;
    text[start..end].to_string()
}

/// boto3's `upload_file` / `download_file` (the SDK's defaults: 8 MiB parts, 10 threads), when
/// a python with boto3 is found; its time includes the client's own hashing and signing.
async fn boto3_figure(root: &Path, b: &str, client: &reqwest::Client, key: &str, data: &[u8]) {
    let python = std::env::var("DUCKBANK_S3_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_boto3 = std::process::Command::new(&python)
        .args(["-c", "import boto3"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has_boto3 {
        println!("boto3 figure skipped: set DUCKBANK_S3_PYTHON to a python with boto3");
        return;
    }
    let key_info = send(
        client,
        reqwest::Method::POST,
        format!("{b}/projects/s/api-keys"),
        key,
        Some(json!({"description": "bench", "scope": "project_admin"})),
    )
    .await;
    let issued = send(
        client,
        reqwest::Method::POST,
        format!("{b}/projects/s/s3-credentials"),
        key,
        Some(json!({"api_key_id": key_info["id"]})),
    )
    .await;
    let src = root.join("boto3-src.bin");
    let mut bytes = data.to_vec();
    bytes[1] = 3;
    std::fs::write(&src, &bytes).unwrap();
    let script = r#"
import sys, time, boto3
from botocore.config import Config
endpoint, access, secret, src, dst = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access,
    aws_secret_access_key=secret, region_name="us-east-1",
    config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
t = time.monotonic(); s3.upload_file(src, "project_s", "boto3.bin"); up = time.monotonic() - t
t = time.monotonic(); s3.download_file("project_s", "boto3.bin", dst); down = time.monotonic() - t
print(f"{up:.3f} {down:.3f}")
"#;
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(format!("{b}/s3"))
        .arg(issued["access_key_id"].as_str().unwrap())
        .arg(issued["secret_access_key"].as_str().unwrap())
        .arg(&src)
        .arg(root.join("boto3-dst.bin"))
        .output()
        .expect("python");
    let text = String::from_utf8_lossy(&out.stdout);
    let times: Vec<f64> = text
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    if !out.status.success() || times.len() != 2 {
        println!(
            "boto3 figure failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    println!(
        "{:<60} {:>12.2} s {:>12.2} s",
        "boto3 upload_file / download_file (client-bound)", times[0], times[1]
    );
    let _ = std::fs::remove_file(src);
    let _ = std::fs::remove_file(root.join("boto3-dst.bin"));
}
