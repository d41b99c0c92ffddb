//! The S3 face's multipart uploads (parts in place or in files of their own, retries, subsets,
//! a Complete racing a part), listings long enough to cross the catalog's read batches, and
//! what a Files API delete leaves of an object.

use std::collections::HashSet;

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use md5::{Digest, Md5};

use crate::helpers::{bytes_of, spawn_app_with_project, JsonClient, TestApp};
use crate::s3_api::listed;

/// The S3 face with the project key as a bearer token (the reference's way, tested in s3_api).
struct Bucket {
    app: TestApp,
    key: String,
}

impl Bucket {
    async fn new() -> Self {
        let (app, key) = spawn_app_with_project().await;
        Self { app, key }
    }

    fn url(&self, target: &str) -> String {
        self.app.url(&format!("/s3/project_1/{target}"))
    }

    async fn send(&self, method: reqwest::Method, target: &str, body: Vec<u8>) -> (u16, String) {
        let res = self
            .app
            .client
            .request(method, self.url(target))
            .bearer_auth(&self.key)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let etag = res
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = res.text().await.unwrap_or_default();
        (status, etag.unwrap_or(text))
    }

    async fn create(&self, key: &str) -> String {
        let (status, text) = self
            .send(reqwest::Method::POST, &format!("{key}?uploads"), vec![])
            .await;
        assert_eq!(status, 200, "{text}");
        between(&text, "<UploadId>", "</UploadId>")
    }

    /// Uploads part `n`; returns its ETag.
    async fn part(&self, key: &str, upload: &str, n: u32, body: &[u8]) -> String {
        let target = format!("{key}?partNumber={n}&uploadId={upload}");
        let (status, etag) = self
            .send(reqwest::Method::PUT, &target, body.to_vec())
            .await;
        assert_eq!(status, 200, "part {n}: {etag}");
        assert_eq!(etag, format!("\"{}\"", hex::encode(Md5::digest(body))));
        etag
    }

    async fn complete(&self, key: &str, upload: &str, parts: &[(u32, &str)]) -> (u16, String) {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (n, etag) in parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        self.send(
            reqwest::Method::POST,
            &format!("{key}?uploadId={upload}"),
            xml.into_bytes(),
        )
        .await
    }

    async fn get(&self, key: &str) -> Vec<u8> {
        let res = self
            .app
            .client
            .get(self.url(key))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), 200, "GET {key}");
        res.bytes().await.expect("body").to_vec()
    }
}

fn between(text: &str, open: &str, close: &str) -> String {
    text.split(open)
        .nth(1)
        .and_then(|rest| rest.split(close).next())
        .unwrap_or_else(|| panic!("no {open} in {text}"))
        .to_string()
}

/// S3's multipart ETag: the MD5 of the parts' MD5s, then `-N`.
fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut md5s = Vec::new();
    for part in parts {
        md5s.extend_from_slice(&Md5::digest(part));
    }
    format!("\"{}-{}\"", hex::encode(Md5::digest(&md5s)), parts.len())
}

#[tokio::test]
async fn parts_sent_out_of_order_in_parallel_and_retried_make_the_object() {
    let s3 = Bucket::new().await;
    let upload = s3.create("par.bin").await;
    let parts: Vec<Vec<u8>> = (0..6)
        .map(|i| bytes_of(if i == 5 { 777 } else { 64 * 1024 }, i + 1))
        .collect();
    // The last (short) part first, then the rest all at once, out of order.
    s3.part("par.bin", &upload, 6, &parts[5]).await;
    let mut etags: Vec<(u32, String)> = stream::iter([3u32, 1, 5, 2, 4])
        .map(|n| {
            let (s3, upload, body) = (&s3, &upload, &parts[n as usize - 1]);
            async move { (n, s3.part("par.bin", upload, n, body).await) }
        })
        .buffer_unordered(5)
        .collect()
        .await;
    // A retried part replaces the first copy.
    let retried = bytes_of(64 * 1024, 99);
    let etag2 = s3.part("par.bin", &upload, 2, &retried).await;
    etags.retain(|(n, _)| *n != 2);
    etags.push((2, etag2));
    etags.push((6, format!("\"{}\"", hex::encode(Md5::digest(&parts[5])))));
    etags.sort();
    let chosen: Vec<(u32, &str)> = etags.iter().map(|(n, e)| (*n, e.as_str())).collect();
    let (status, text) = s3.complete("par.bin", &upload, &chosen).await;
    assert_eq!(status, 200, "{text}");
    let mut want_parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    want_parts[1] = &retried;
    let want: Vec<u8> = want_parts.concat();
    assert!(
        text.contains(&multipart_etag(&want_parts).replace('"', "&quot;")),
        "{text}"
    );
    assert_eq!(s3.get("par.bin").await, want);
    // The Files API sees the same content, hashed whole.
    let files = s3
        .app
        .get("/projects/1/files?limit=100", &s3.key)
        .await
        .expect(200);
    let record = files["files"]
        .as_array()
        .and_then(|all| all.iter().find(|f| f["name"] == "par.bin"))
        .cloned()
        .expect("listed");
    let sha = hex::encode(sha2::Sha256::digest(&want));
    assert_eq!(record["checksum_sha256"], sha, "{record}");
}

#[tokio::test]
async fn parts_that_do_not_share_a_size_and_chosen_subsets_still_assemble() {
    let s3 = Bucket::new().await;
    let (a, b, c, d) = (
        bytes_of(1000, 1),
        bytes_of(2500, 2),
        bytes_of(1000, 3),
        bytes_of(10, 4),
    );
    // Part 2 is larger than part 1: it cannot sit in a slot.
    let upload = s3.create("mixed.bin").await;
    let e1 = s3.part("mixed.bin", &upload, 1, &a).await;
    let e2 = s3.part("mixed.bin", &upload, 2, &b).await;
    let e3 = s3.part("mixed.bin", &upload, 3, &d).await;
    let (status, text) = s3
        .complete("mixed.bin", &upload, &[(1, &e1), (2, &e2), (3, &e3)])
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(s3.get("mixed.bin").await, [&a[..], &b, &d].concat());

    // Four equal parts, completed with the first two only: the rest is not in the object.
    let upload = s3.create("prefix.bin").await;
    let mut etags = Vec::new();
    for (n, body) in [(1, &a), (2, &c), (3, &a), (4, &c)] {
        etags.push(s3.part("prefix.bin", &upload, n, body).await);
    }
    let (status, text) = s3
        .complete("prefix.bin", &upload, &[(1, &etags[0]), (2, &etags[1])])
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(s3.get("prefix.bin").await, [&a[..], &c].concat());

    // A gap: parts 1 and 3 of three.
    let upload = s3.create("gap.bin").await;
    let mut etags = Vec::new();
    for (n, body) in [(1, &a), (2, &c), (3, &d)] {
        etags.push(s3.part("gap.bin", &upload, n, body).await);
    }
    let (status, text) = s3
        .complete("gap.bin", &upload, &[(1, &etags[0]), (3, &etags[2])])
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(s3.get("gap.bin").await, [&a[..], &d].concat());

    // A Complete that fails (a wrong ETag) leaves the parts whole for the next try.
    let upload = s3.create("retry.bin").await;
    let e1 = s3.part("retry.bin", &upload, 1, &a).await;
    let e2 = s3.part("retry.bin", &upload, 2, &d).await;
    let (status, text) = s3
        .complete("retry.bin", &upload, &[(1, &e1), (2, &e1)])
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("<Code>InvalidPart</Code>"), "{text}");
    let (status, text) = s3
        .complete("retry.bin", &upload, &[(1, &e1), (2, &e2)])
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(s3.get("retry.bin").await, [&a[..], &d].concat());
}

#[tokio::test]
async fn a_complete_while_a_part_is_still_arriving_is_refused_and_nothing_mixes() {
    let s3 = Bucket::new().await;
    let upload = s3.create("race.bin").await;
    let (a, b) = (bytes_of(4096, 1), bytes_of(4096, 2));
    let e1 = s3.part("race.bin", &upload, 1, &a).await;
    // Part 2 arrives slowly: half now, the rest after the Complete attempt.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let slow = {
        let request = s3
            .app
            .client
            .put(s3.url(&format!("race.bin?partNumber=2&uploadId={upload}")))
            .bearer_auth(&s3.key)
            .header("content-length", b.len())
            .body(reqwest::Body::wrap_stream(stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) },
            )));
        tokio::spawn(async move { request.send().await })
    };
    tx.send(Ok(Bytes::copy_from_slice(&b[..2048])))
        .await
        .unwrap();
    // The part is being received once its first bytes are: poll until Complete says so. (Not
    // yet refused, this Complete fails on the part 2 that is not there yet.)
    let mut refused = None;
    for _ in 0..100 {
        let (status, text) = s3
            .complete("race.bin", &upload, &[(1, &e1), (2, "\"0\"")])
            .await;
        if status == 409 {
            refused = Some(text);
            break;
        }
        assert_eq!(status, 400, "part 2 is not there yet: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let refused = refused.expect("a Complete during a part upload is refused");
    assert!(
        refused.contains("<Code>OperationAborted</Code>"),
        "{refused}"
    );
    tx.send(Ok(Bytes::copy_from_slice(&b[2048..])))
        .await
        .unwrap();
    drop(tx);
    let res = slow.await.unwrap().expect("part 2");
    assert_eq!(res.status(), 200);
    let e2 = res.headers()["etag"].to_str().unwrap().to_string();
    let (status, text) = s3
        .complete("race.bin", &upload, &[(1, &e1), (2, &e2)])
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(s3.get("race.bin").await, [&a[..], &b].concat());
}

#[tokio::test]
async fn a_listing_of_thousands_of_keys_pages_through_each_exactly_once() {
    let s3 = Bucket::new().await;
    // More keys than one catalog read (at most 1 001 rows), and common prefixes that a read
    // must jump over.
    let keys: Vec<String> = (0..1050)
        .map(|i| format!("k/{i:05}"))
        .chain((0..300).map(|i| format!("k/dir{}/{i:05}", i % 3)))
        .collect();
    stream::iter(keys.iter())
        .map(|k| {
            let s3 = &s3;
            async move {
                let (status, text) = s3
                    .send(reqwest::Method::PUT, k, k.clone().into_bytes())
                    .await;
                assert_eq!(status, 200, "{text}");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    for (delimiter, page) in [
        ("", 1000),
        ("", 333),
        ("&delimiter=%2F", 1000),
        ("&delimiter=%2F", 7),
    ] {
        let (mut seen, mut prefixes, mut token) = (Vec::new(), Vec::new(), None::<String>);
        loop {
            let cont = token
                .as_ref()
                .map(|t| format!("&continuation-token={t}"))
                .unwrap_or_default();
            let res = s3
                .app
                .client
                .get(s3.app.url(&format!(
                    "/s3/project_1?list-type=2&prefix=k%2F&max-keys={page}{delimiter}{cont}"
                )))
                .bearer_auth(&s3.key)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let (keys_here, prefixes_here, next) = listed(&res.text().await.unwrap());
            assert!(keys_here.len() + prefixes_here.len() <= page);
            seen.extend(keys_here);
            prefixes.extend(prefixes_here);
            token = next;
            if token.is_none() {
                break;
            }
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "a key was listed twice");
        let mut want: Vec<String> = keys.clone();
        if delimiter.is_empty() {
            want.sort();
            assert_eq!(seen, want);
            assert!(prefixes.is_empty());
        } else {
            want.retain(|k| !k["k/".len()..].contains('/'));
            assert_eq!(seen, want);
            assert_eq!(prefixes, vec!["k/dir0/", "k/dir1/", "k/dir2/"]);
        }
    }
}

#[tokio::test]
async fn a_files_api_delete_takes_the_objects_etag_with_it() {
    let mut s3 = Bucket::new().await;
    let (status, _) = s3
        .send(reqwest::Method::PUT, "gone.txt", b"bye".to_vec())
        .await;
    assert_eq!(status, 200);
    let files = s3.app.get("/projects/1/files", &s3.key).await.expect(200);
    let id = files["files"][0]["id"].as_str().expect("id").to_string();
    s3.app
        .delete(&format!("/projects/1/files/{id}"), &s3.key)
        .await
        .expect(204);
    s3.app.stop().await;
    let conn =
        duckdb::Connection::open(s3.app.data_dir.join("metadata.duckdb")).expect("open catalog");
    let left: i64 = conn
        .query_row("SELECT count(*) FROM s3_etags", [], |r| r.get(0))
        .expect("count");
    assert_eq!(left, 0, "the deleted record's ETag row stayed behind");
}

#[tokio::test]
async fn open_parts_count_against_the_project_quota() {
    let app = crate::helpers::spawn_app_configured(|c| c.project_quota_bytes = 10_000).await;
    let key = app.create_project("1").await;
    let s3 = Bucket { app, key };
    let upload = s3.create("q.bin").await;
    let part = bytes_of(4000, 1);
    let e1 = s3.part("q.bin", &upload, 1, &part).await;
    s3.part("q.bin", &upload, 2, &part).await;
    // A third part would hold 12 000 bytes in a 10 000-byte project.
    let target = format!("q.bin?partNumber=3&uploadId={upload}");
    let (status, text) = s3.send(reqwest::Method::PUT, &target, part.clone()).await;
    assert_eq!(status, 507, "{text}");
    assert!(text.contains("<Code>InsufficientStorage</Code>"), "{text}");
    // Replacing a part counts only the new bytes.
    s3.part("q.bin", &upload, 2, &bytes_of(4000, 3)).await;
    let (status, text) = s3.complete("q.bin", &upload, &[(1, &e1)]).await;
    assert_eq!(status, 200, "{text}");
    // Completed, the upload holds nothing more than its 4 000-byte object.
    let (status, text) = s3
        .send(reqwest::Method::PUT, "other.bin", bytes_of(5000, 2))
        .await;
    assert_eq!(status, 200, "{text}");
}

#[tokio::test]
async fn parts_of_a_deleted_projects_upload_are_swept() {
    let app = crate::helpers::spawn_app_configured(|c| {
        c.cleanup_interval_secs = 1;
        c.upload_ttl_secs = 1;
    })
    .await;
    let key = app.create_project("1").await;
    let s3 = Bucket { app, key };
    let upload = s3.create("orphan.bin").await;
    s3.part("orphan.bin", &upload, 1, &bytes_of(100, 1)).await;
    let parts = s3.app.data_dir.join("files/s3-parts").join(&upload);
    assert!(parts.is_dir());
    s3.app
        .delete("/projects/1", crate::helpers::ADMIN_KEY)
        .await
        .expect(204);
    for _ in 0..100 {
        if !parts.exists() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the parts of a deleted project's upload stayed at {parts:?}");
}
