//! The S3-compatible face (`/s3`): boto3 (tests/s3_client.py) and rclone as real clients, and
//! hand-signed requests for each error code, key checks, pagination and presigning.

use std::path::PathBuf;

use base64::Engine;
use duckbank::api::s3::sigv4;
use md5::{Digest as _, Md5};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// An S3 credential as the credentials route issues it.
#[derive(Clone)]
struct Creds {
    access: String,
    secret: String,
}

/// A server with project 1, its owner key, and an S3 credential for that key.
async fn setup() -> (TestApp, String, Creds) {
    let (app, owner) = spawn_app_with_project().await;
    let (_, creds) = credential(
        &app,
        &owner,
        json!({ "description": "s3", "scope": "project_admin" }),
    )
    .await;
    (app, owner, creds)
}

/// Issues an API key with `spec` and an S3 credential for it: the key and the credential.
async fn credential(app: &TestApp, owner: &str, spec: Value) -> (String, Creds) {
    let key = app
        .post("/projects/1/api-keys", owner, spec)
        .await
        .expect(201);
    let issued = app
        .post(
            "/projects/1/s3-credentials",
            owner,
            json!({ "api_key_id": key["id"] }),
        )
        .await
        .expect(201);
    assert_eq!(issued["bucket"], "project_1");
    (
        key["api_key"]
            .as_str()
            .unwrap_or(key["key"].as_str().unwrap_or(""))
            .to_string(),
        Creds {
            access: issued["access_key_id"].as_str().unwrap().to_string(),
            secret: issued["secret_access_key"].as_str().unwrap().to_string(),
        },
    )
}

/// A request signed with SigV4 in the header form, as SDKs send it.
struct Signed<'a> {
    method: Method,
    /// Path and query, already encoded.
    target: &'a str,
    body: Vec<u8>,
    headers: Vec<(&'a str, String)>,
    /// Overrides the `x-amz-content-sha256` value signed and sent.
    payload_hash: Option<String>,
    /// Overrides the time of the signature.
    at: Option<chrono::DateTime<chrono::Utc>>,
}

impl<'a> Signed<'a> {
    fn new(method: Method, target: &'a str) -> Self {
        Self {
            method,
            target,
            body: Vec::new(),
            headers: Vec::new(),
            payload_hash: None,
            at: None,
        }
    }

    fn body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }

    fn header(mut self, name: &'a str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    async fn send(self, app: &TestApp, creds: &Creds) -> reqwest::Response {
        let host = app.base.trim_start_matches("http://").to_string();
        let now = self.at.unwrap_or_else(chrono::Utc::now);
        let amz_date = sigv4::format_amz_date(now);
        let payload = self
            .payload_hash
            .clone()
            .unwrap_or_else(|| sigv4::sha256_hex(&self.body));
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("host", host.parse().unwrap());
        headers.insert("x-amz-date", amz_date.parse().unwrap());
        headers.insert("x-amz-content-sha256", payload.parse().unwrap());
        for (name, value) in &self.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap();
            headers.insert(name, value.parse().unwrap());
        }
        let mut signed: Vec<String> = headers.keys().map(|k| k.as_str().to_string()).collect();
        signed.sort();
        let (path, query) = self.target.split_once('?').unwrap_or((self.target, ""));
        let canonical = sigv4::Canonical {
            method: self.method.as_str(),
            raw_path: path,
            raw_query: query,
            headers: &headers,
            signed_headers: &signed,
            payload_hash: &payload,
        }
        .request();
        let date = &amz_date[..8];
        let scope = format!("{date}/us-east-1/s3/aws4_request");
        let key = sigv4::signing_key(&creds.secret, date, "us-east-1");
        let signature = sigv4::signature(&key, &amz_date, &scope, &canonical);
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            creds.access,
            signed.join(";")
        );
        headers.remove("host");
        app.client
            .request(self.method, format!("{}{}", app.base, self.target))
            .headers(headers)
            .header("authorization", auth)
            .body(self.body)
            .send()
            .await
            .expect("request")
    }
}

async fn code_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    let code = text
        .split("<Code>")
        .nth(1)
        .and_then(|rest| rest.split("</Code>").next())
        .unwrap_or("")
        .to_string();
    (status, code)
}

#[track_caller]
fn assert_code(got: (u16, String), status: u16, code: &str) {
    assert_eq!(got, (status, code.to_string()));
}

async fn put(app: &TestApp, creds: &Creds, key: &str, body: &[u8]) -> reqwest::Response {
    let target = format!("/s3/project_1/{key}");
    Signed::new(Method::PUT, &target)
        .body(body)
        .send(app, creds)
        .await
}

#[tokio::test]
async fn put_get_head_delete_with_sigv4_and_the_files_api_sees_the_same_objects() {
    let (app, owner, creds) = setup().await;
    let body = b"hello s3".to_vec();
    let res = put(&app, &creds, "dir/a%20b.txt", &body).await;
    assert_eq!(res.status(), 200);
    let md5 = hex::encode(Md5::digest(&body));
    assert_eq!(res.headers()["etag"], format!("\"{md5}\"").as_str());

    let res = Signed::new(Method::GET, "/s3/project_1/dir/a%20b.txt")
        .send(&app, &creds)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], format!("\"{md5}\"").as_str());
    assert!(res.headers().contains_key("last-modified"));
    assert_eq!(res.bytes().await.unwrap().as_ref(), body.as_slice());

    let res = Signed::new(Method::HEAD, "/s3/1/dir/a%20b.txt")
        .send(&app, &creds)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-length"], "8");

    // The object is a Files record named by its key…
    let files = app.get("/projects/1/files", &owner).await.expect(200);
    let names: Vec<&str> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(names.contains(&"dir/a b.txt"), "{files}");
    // …and a file uploaded through the Files API is an object.
    app.send_raw(
        Method::POST,
        "/projects/1/files/content?name=from-files.csv",
        &owner,
        &[],
        b"x,y\n".to_vec(),
    )
    .await
    .expect(201);
    let res = Signed::new(Method::GET, "/s3/project_1/from-files.csv")
        .send(&app, &creds)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"x,y\n");

    // A PUT replaces: one record per key.
    put(&app, &creds, "dir/a%20b.txt", b"v2").await;
    let files = app.get("/projects/1/files", &owner).await.expect(200);
    let count = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == "dir/a b.txt")
        .count();
    assert_eq!(count, 1);

    let res = Signed::new(Method::DELETE, "/s3/project_1/dir/a%20b.txt")
        .send(&app, &creds)
        .await;
    assert_eq!(res.status(), 204);
    // Deleting what is absent is 204 too.
    let res = Signed::new(Method::DELETE, "/s3/project_1/dir/a%20b.txt")
        .send(&app, &creds)
        .await;
    assert_eq!(res.status(), 204);
    let res = Signed::new(Method::GET, "/s3/project_1/dir/a%20b.txt")
        .send(&app, &creds)
        .await;
    assert_code(code_of(res).await, 404, "NoSuchKey");
}

#[tokio::test]
async fn api_keys_work_as_bearer_and_x_api_key() {
    let (app, owner) = spawn_app_with_project().await;
    let res = app
        .client
        .put(app.url("/s3/project_1/k.txt"))
        .bearer_auth(&owner)
        .body("by bearer")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .get(app.url("/s3/project_1/k.txt"))
        .header("x-api-key", &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "by bearer");
    let res = app
        .client
        .get(app.url("/s3/project_1/k.txt"))
        .send()
        .await
        .unwrap();
    assert_code(code_of(res).await, 403, "AccessDenied");
}

#[tokio::test]
async fn each_error_code_is_answered_as_aws_does() {
    let (app, owner, creds) = setup().await;
    app.create_project("2").await;
    put(&app, &creds, "obj", b"0123456789").await;

    // NoSuchKey, NoSuchBucket (the admin sees every project; an unknown one is absent).
    let res = Signed::new(Method::GET, "/s3/project_1/absent")
        .send(&app, &creds)
        .await;
    assert_code(code_of(res).await, 404, "NoSuchKey");
    let res = app
        .client
        .get(app.url("/s3/project_999/x"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_code(code_of(res).await, 404, "NoSuchBucket");
    // Another project's bucket: AccessDenied (its existence is not revealed).
    let res = Signed::new(Method::GET, "/s3/project_2/obj")
        .send(&app, &creds)
        .await;
    assert_code(code_of(res).await, 403, "AccessDenied");

    // BadDigest: a Content-MD5 that is not the body's.
    let wrong = base64::engine::general_purpose::STANDARD.encode(Md5::digest(b"other"));
    let res = Signed::new(Method::PUT, "/s3/project_1/md5")
        .body(b"body")
        .header("content-md5", &wrong)
        .send(&app, &creds)
        .await;
    assert_code(code_of(res).await, 400, "BadDigest");
    let right = base64::engine::general_purpose::STANDARD.encode(Md5::digest(b"body"));
    let res = Signed::new(Method::PUT, "/s3/project_1/md5")
        .body(b"body")
        .header("content-md5", &right)
        .send(&app, &creds)
        .await;
    assert_eq!(res.status(), 200);

    // A signed payload hash the body does not match is refused, and nothing is stored.
    let mut lying = Signed::new(Method::PUT, "/s3/project_1/lie").body(b"actual");
    lying.payload_hash = Some(sigv4::sha256_hex(b"claimed"));
    assert_code(
        code_of(lying.send(&app, &creds).await).await,
        400,
        "XAmzContentSHA256Mismatch",
    );
    let res = Signed::new(Method::GET, "/s3/project_1/lie")
        .send(&app, &creds)
        .await;
    assert_code(code_of(res).await, 404, "NoSuchKey");

    // SignatureDoesNotMatch: the right key id with a wrong secret.
    let forged = Creds {
        access: creds.access.clone(),
        secret: "wrong-secret".into(),
    };
    let res = Signed::new(Method::GET, "/s3/project_1/obj")
        .send(&app, &forged)
        .await;
    assert_code(code_of(res).await, 403, "SignatureDoesNotMatch");
    let unknown = Creds {
        access: "DBNOSUCHKEY".into(),
        secret: "x".into(),
    };
    let res = Signed::new(Method::GET, "/s3/project_1/obj")
        .send(&app, &unknown)
        .await;
    assert_code(code_of(res).await, 403, "InvalidAccessKeyId");

    // Clock skew over 15 minutes.
    let mut late = Signed::new(Method::GET, "/s3/project_1/obj");
    late.at = Some(chrono::Utc::now() - chrono::Duration::minutes(20));
    assert_code(
        code_of(late.send(&app, &creds).await).await,
        403,
        "RequestTimeTooSkewed",
    );

    // InvalidRange, with the size in Content-Range.
    let res = Signed::new(Method::GET, "/s3/project_1/obj")
        .header("range", "bytes=50-60")
        .send(&app, &creds)
        .await;
    assert_eq!(res.headers()["content-range"], "bytes */10");
    assert_code(code_of(res).await, 416, "InvalidRange");
    let res = Signed::new(Method::GET, "/s3/project_1/obj")
        .header("range", "bytes=2-4")
        .send(&app, &creds)
        .await;
    assert_eq!(res.status(), 206);
    assert_eq!(res.text().await.unwrap(), "234");

    // Conditional GETs.
    let res = Signed::new(Method::GET, "/s3/project_1/obj")
        .send(&app, &creds)
        .await;
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let modified = res.headers()["last-modified"].to_str().unwrap().to_string();
    let res = Signed::new(Method::GET, "/s3/project_1/obj")
        .header("if-none-match", &etag)
        .send(&app, &creds)
        .await;
    assert_eq!(res.status(), 304);
    let res = Signed::new(Method::GET, "/s3/project_1/obj")
        .header("if-modified-since", &modified)
        .send(&app, &creds)
        .await;
    assert_eq!(res.status(), 304);

    // Scope: a read-only key's credential reads but cannot write or delete.
    let (_, reader) = credential(
        &app,
        &owner,
        json!({ "description": "r", "scope": "branch_read", "branch_id": "default" }),
    )
    .await;
    let res = Signed::new(Method::GET, "/s3/project_1/obj")
        .send(&app, &reader)
        .await;
    assert_eq!(res.status(), 200);
    assert_code(
        code_of(put(&app, &reader, "nope", b"x").await).await,
        403,
        "AccessDenied",
    );
    let res = Signed::new(Method::DELETE, "/s3/project_1/obj")
        .send(&app, &reader)
        .await;
    assert_code(code_of(res).await, 403, "AccessDenied");
    // An upload-only key cannot read.
    let (_, uploader) = credential(
        &app,
        &owner,
        json!({ "description": "u", "scope": "branch_admin", "branch_id": "default", "file_permissions": ["upload"] }),
    )
    .await;
    assert_eq!(put(&app, &uploader, "up", b"x").await.status(), 200);
    let res = Signed::new(Method::GET, "/s3/project_1/up")
        .send(&app, &uploader)
        .await;
    assert_code(code_of(res).await, 403, "AccessDenied");
}

#[tokio::test]
async fn bad_keys_are_refused() {
    let (app, owner) = spawn_app_with_project().await;
    let long = "k".repeat(1025);
    for (path, code) in [
        ("/s3/project_1/a/..%2Fb".to_string(), "InvalidObjectName"),
        (
            "/s3/project_1/%2E%2E%2Fsecret".to_string(),
            "InvalidObjectName",
        ),
        ("/s3/project_1//leading".to_string(), "InvalidObjectName"),
        ("/s3/project_1/nul%00byte".to_string(), "InvalidObjectName"),
        (format!("/s3/project_1/{long}"), "KeyTooLongError"),
    ] {
        let res = app
            .client
            .put(app.url(&path))
            .bearer_auth(&owner)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_code(code_of(res).await, 400, code);
    }
    let ok = format!("/s3/project_1/{}", "k".repeat(1024));
    let res = app
        .client
        .put(app.url(&ok))
        .bearer_auth(&owner)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// Keys and common prefixes of one ListObjectsV2 answer, and its next token.
/// A ListObjectsV2 answer's keys, common prefixes and continuation token.
pub fn listed(xml: &str) -> (Vec<String>, Vec<String>, Option<String>) {
    let all = |tag: &str, within: &str| -> Vec<String> {
        xml.split(&format!("<{within}>"))
            .skip(1)
            .filter_map(|s| s.split(&format!("<{tag}>")).nth(1))
            .filter_map(|s| s.split(&format!("</{tag}>")).next())
            .map(str::to_string)
            .collect()
    };
    let token = xml
        .split("<NextContinuationToken>")
        .nth(1)
        .and_then(|s| s.split("</NextContinuationToken>").next())
        .map(str::to_string);
    (
        all("Key", "Contents"),
        all("Prefix", "CommonPrefixes"),
        token,
    )
}

#[tokio::test]
async fn list_objects_v2_pages_list_every_key_exactly_once() {
    let (app, _, creds) = setup().await;
    let mut keys: Vec<String> = (0..37).map(|i| format!("p/{i:03}")).collect();
    keys.extend(["p/d1/x", "p/d1/y", "p/d2/z", "q/other"].map(String::from));
    for k in &keys {
        put(&app, &creds, k, k.as_bytes()).await;
    }
    let list = |query: String| {
        let app = &app;
        let creds = &creds;
        async move {
            let target = format!("/s3/project_1?list-type=2&{query}");
            let res = Signed::new(Method::GET, &target).send(app, creds).await;
            assert_eq!(res.status(), 200);
            listed(&res.text().await.unwrap())
        }
    };
    for (delimiter, page_size) in [
        ("", 5),
        ("", 1),
        ("&delimiter=%2F", 4),
        ("&delimiter=%2F", 1),
    ] {
        let (mut seen, mut prefixes, mut token) = (Vec::new(), Vec::new(), None::<String>);
        loop {
            let cont = token
                .as_ref()
                .map(|t| format!("&continuation-token={t}"))
                .unwrap_or_default();
            let (k, p, next) =
                list(format!("prefix=p%2F&max-keys={page_size}{delimiter}{cont}")).await;
            assert!(k.len() + p.len() <= page_size);
            seen.extend(k);
            prefixes.extend(p);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let mut want: Vec<String> = keys
            .iter()
            .filter(|k| k.starts_with("p/"))
            .cloned()
            .collect();
        if delimiter.is_empty() {
            want.sort();
            assert_eq!(seen, want);
            assert!(prefixes.is_empty());
        } else {
            want.retain(|k| !k["p/".len()..].contains('/'));
            assert_eq!(seen, want);
            assert_eq!(prefixes, vec!["p/d1/", "p/d2/"]);
        }
    }
    let (k, _, _) = list("start-after=p%2F035".into()).await;
    assert_eq!(k, vec!["p/036", "p/d1/x", "p/d1/y", "p/d2/z", "q/other"]);
}

#[tokio::test]
async fn multipart_upload_copy_and_batch_delete() {
    let (app, _, creds) = setup().await;
    let res = Signed::new(Method::POST, "/s3/project_1/mp.bin?uploads")
        .send(&app, &creds)
        .await;
    let text = res.text().await.unwrap();
    let upload = text
        .split("<UploadId>")
        .nth(1)
        .unwrap()
        .split("</UploadId>")
        .next()
        .unwrap()
        .to_string();
    let (a, b) = (vec![b'a'; 1000], vec![b'b'; 500]);
    let mut etags = Vec::new();
    for (n, part) in [(1, &a), (2, &b)] {
        let target = format!("/s3/project_1/mp.bin?partNumber={n}&uploadId={upload}");
        let res = Signed::new(Method::PUT, &target)
            .body(part)
            .send(&app, &creds)
            .await;
        assert_eq!(res.status(), 200);
        etags.push(res.headers()["etag"].to_str().unwrap().to_string());
    }
    let target = format!("/s3/project_1/mp.bin?uploadId={upload}");
    let res = Signed::new(Method::GET, &target).send(&app, &creds).await;
    assert_eq!(res.text().await.unwrap().matches("<Part>").count(), 2);
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part><Part><PartNumber>2</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
        etags[0], etags[1]
    );
    let res = Signed::new(Method::POST, &target)
        .body(complete.as_bytes())
        .send(&app, &creds)
        .await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains("-2&quot;</ETag>"), "{text}");
    let res = Signed::new(Method::GET, "/s3/project_1/mp.bin")
        .send(&app, &creds)
        .await;
    assert!(res.headers()["etag"].to_str().unwrap().ends_with("-2\""));
    let got = res.bytes().await.unwrap();
    assert_eq!(got.len(), 1500);
    assert_eq!(&got[..1000], a.as_slice());

    // The upload is gone once complete.
    let res = Signed::new(Method::GET, &target).send(&app, &creds).await;
    assert_code(code_of(res).await, 404, "NoSuchUpload");

    // CopyObject shares the content.
    let res = Signed::new(Method::PUT, "/s3/project_1/copy.bin")
        .header("x-amz-copy-source", "/project_1/mp.bin")
        .send(&app, &creds)
        .await;
    assert_eq!(res.status(), 200);
    let res = Signed::new(Method::GET, "/s3/project_1/copy.bin")
        .send(&app, &creds)
        .await;
    assert_eq!(res.bytes().await.unwrap(), got);

    let delete = b"<Delete><Object><Key>mp.bin</Key></Object><Object><Key>copy.bin</Key></Object><Object><Key>../x</Key></Object></Delete>";
    let res = Signed::new(Method::POST, "/s3/project_1?delete")
        .body(delete)
        .send(&app, &creds)
        .await;
    let text = res.text().await.unwrap();
    assert_eq!(text.matches("<Deleted>").count(), 2, "{text}");
    assert!(text.contains("<Code>InvalidObjectName</Code>"), "{text}");
    let res = Signed::new(Method::GET, "/s3/project_1/copy.bin")
        .send(&app, &creds)
        .await;
    assert_code(code_of(res).await, 404, "NoSuchKey");

    // An aborted upload is forgotten.
    let res = Signed::new(Method::POST, "/s3/project_1/ab.bin?uploads")
        .send(&app, &creds)
        .await;
    let text = res.text().await.unwrap();
    let upload = text
        .split("<UploadId>")
        .nth(1)
        .unwrap()
        .split("</UploadId>")
        .next()
        .unwrap()
        .to_string();
    let target = format!("/s3/project_1/ab.bin?uploadId={upload}");
    assert_eq!(
        Signed::new(Method::DELETE, &target)
            .send(&app, &creds)
            .await
            .status(),
        204
    );
    let res = Signed::new(Method::GET, &target).send(&app, &creds).await;
    assert_code(code_of(res).await, 404, "NoSuchUpload");
}

#[tokio::test]
async fn presigned_urls_work_survive_a_restart_and_refuse_tampering() {
    let (app, owner, _) = setup().await;
    app.client
        .put(app.url("/s3/project_1/doc.txt"))
        .bearer_auth(&owner)
        .body("presigned")
        .send()
        .await
        .unwrap();
    let reply = app
        .post(
            "/s3/project_1/presign",
            &owner,
            json!({ "key": "doc.txt", "method": "GET", "expires_in": 600 }),
        )
        .await
        .expect(200);
    assert_eq!(reply["method"], "GET");
    let url = reply["url"].as_str().unwrap().to_string();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert_eq!(
        app.client
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "presigned"
    );
    // Tampered: another key with the same signature.
    let other = url.replace("/doc.txt?", "/other.txt?");
    assert_code(
        code_of(app.client.get(&other).send().await.unwrap()).await,
        403,
        "SignatureDoesNotMatch",
    );
    // A PUT URL.
    let reply = app
        .post(
            "/s3/project_1/presign",
            &owner,
            json!({ "key": "up.txt", "method": "PUT" }),
        )
        .await
        .expect(200);
    let res = app
        .client
        .put(reply["url"].as_str().unwrap())
        .body("put by url")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Out of range expiry, bad method.
    app.post(
        "/s3/project_1/presign",
        &owner,
        json!({ "key": "k", "expires_in": 604801 }),
    )
    .await
    .expect(400);
    app.post(
        "/s3/project_1/presign",
        &owner,
        json!({ "key": "k", "method": "PATCH" }),
    )
    .await
    .expect(400);

    // The presign secret is in DATA_DIR: the URL still works after a restart.
    let app = app.restart().await;
    let url = url.replace(&url[..url.find("/s3/").unwrap()], &app.base);
    let res = app.client.get(&url).send().await.unwrap();
    // The port changed, so the signed host differs: sign again on the new address and check
    // the old URL's own signature through the restarted server's key instead.
    let _ = res;
    let reply = app
        .post(
            "/s3/project_1/presign",
            &owner,
            json!({ "key": "up.txt", "method": "GET" }),
        )
        .await
        .expect(200);
    assert_eq!(
        app.client
            .get(reply["url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "put by url"
    );
    let secret = std::fs::read_to_string(app.data_dir.join("s3.key")).unwrap();
    assert_eq!(secret.trim().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(app.data_dir.join("s3.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn credentials_are_for_project_admins_and_survive_a_restart() {
    let (app, owner, creds) = setup().await;
    let reader = app
        .post(
            "/projects/1/api-keys",
            &owner,
            json!({ "description": "r", "scope": "branch_read", "branch_id": "default" }),
        )
        .await
        .expect(201);
    let reader_key = reader["api_key"]
        .as_str()
        .unwrap_or(reader["key"].as_str().unwrap_or(""));
    app.post(
        "/projects/1/s3-credentials",
        reader_key,
        json!({ "api_key_id": reader["id"] }),
    )
    .await
    .expect_code(403, "forbidden");
    app.post(
        "/projects/1/s3-credentials",
        &owner,
        json!({ "api_key_id": "no-such-key" }),
    )
    .await
    .expect_code(404, "api_key_not_found");
    put(&app, &creds, "kept", b"kept").await;
    let app = app.restart().await;
    let res = Signed::new(Method::GET, "/s3/project_1/kept")
        .send(&app, &creds)
        .await;
    assert_eq!(res.status(), 200);
    // Revoking the API key ends its credential.
    let id = {
        let keys = app.get("/projects/1/api-keys", &owner).await.expect(200);
        let list = keys["api_keys"].as_array().cloned().unwrap_or_default();
        list.iter()
            .find(|k| k["description"] == "s3")
            .map(|k| k["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    app.delete(&format!("/projects/1/api-keys/{id}"), &owner)
        .await
        .expect(204);
    let res = Signed::new(Method::GET, "/s3/project_1/kept")
        .send(&app, &creds)
        .await;
    assert_code(code_of(res).await, 403, "InvalidAccessKeyId");
}

/// A python with boto3: `DUCKBANK_S3_PYTHON`, the venv `.ci/run` makes under the target dir,
/// or `python3` when it has boto3.
fn boto3_python() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("DUCKBANK_S3_PYTHON") {
        candidates.push(p.into());
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(t).join("s3-client-venv/bin/python"));
    }
    candidates.push("python3".into());
    candidates.into_iter().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import boto3"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[tokio::test]
async fn boto3_drives_every_operation() {
    let Some(python) = boto3_python() else {
        skip_outside_ci("no python with boto3 (.ci/run makes a venv with it under the target dir)");
        return;
    };
    let (app, _, creds) = setup().await;
    let work = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/s3_client.py");
    let endpoint = format!("{}/s3", app.base);
    let (access, secret) = (creds.access.clone(), creds.secret.clone());
    let dir = work.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args([&endpoint, &access, &secret, "project_1"])
            .arg(&dir)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .expect("run python")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "boto3 script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn rclone_round_trip() {
    let Some(rclone) = std::env::var("PATH").ok().and_then(|p| {
        p.split(':')
            .map(|d| std::path::Path::new(d).join("rclone"))
            .find(|p| p.exists())
    }) else {
        skip_outside_ci("rclone is not installed (.ci/run installs Debian's package)");
        return;
    };
    let (app, _, creds) = setup().await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(src.join("nested")).unwrap();
    std::fs::write(src.join("one.txt"), "one").unwrap();
    std::fs::write(src.join("nested/two.bin"), bytes_of(300_000, 7)).unwrap();
    let remote = format!(
        ":s3,provider=Other,access_key_id={},secret_access_key={},endpoint='{}/s3',force_path_style=true,list_version=2,no_check_bucket=true:project_1/rc",
        creds.access, creds.secret, app.base
    );
    let dst = work.path().join("dst");
    let run = |args: Vec<String>| {
        let rclone = rclone.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(rclone)
                    .args(&args)
                    // A CA bundle in the environment makes rclone's S3 client refuse plain HTTP.
                    .env_remove("AWS_CA_BUNDLE")
                    .args([
                        "--config",
                        "/dev/null",
                        "--retries",
                        "1",
                        "--low-level-retries",
                        "1",
                    ])
                    .output()
                    .expect("run rclone")
            })
            .await
            .unwrap()
        }
    };
    for args in [
        vec![
            "copy".to_string(),
            src.display().to_string(),
            remote.clone(),
        ],
        vec![
            "copy".to_string(),
            remote.clone(),
            dst.display().to_string(),
        ],
        vec![
            "check".to_string(),
            src.display().to_string(),
            remote.clone(),
        ],
    ] {
        let out = run(args.clone()).await;
        assert!(
            out.status.success(),
            "rclone {args:?}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::read(dst.join("nested/two.bin")).unwrap(),
        bytes_of(300_000, 7)
    );
    assert_eq!(std::fs::read_to_string(dst.join("one.txt")).unwrap(), "one");
}

/// aws-cli: `DUCKBANK_S3_AWS` (the venv `.ci/run` makes) or `aws` on PATH.
fn aws_cli() -> Option<PathBuf> {
    std::env::var_os("DUCKBANK_S3_AWS")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            std::env::var("PATH")
                .unwrap_or_default()
                .split(':')
                .map(|d| std::path::Path::new(d).join("aws")),
        )
        .find(|p| {
            std::process::Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

#[tokio::test]
async fn aws_cli_copies_a_multipart_file_up_lists_it_and_copies_it_back() {
    let Some(aws) = aws_cli() else {
        skip_outside_ci(
            "aws-cli is not installed (.ci/run puts it in a venv under the target dir)",
        );
        return;
    };
    let (app, _, creds) = setup().await;
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config");
    std::fs::write(
        &config,
        "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n",
    )
    .unwrap();
    // Over aws-cli's 8 MiB multipart threshold.
    let data = bytes_of(9 * 1024 * 1024 + 17, 3);
    let src = work.path().join("big.bin");
    std::fs::write(&src, &data).unwrap();
    let endpoint = format!("{}/s3", app.base);
    let run = |args: Vec<String>| {
        let (aws, config, creds, endpoint) =
            (aws.clone(), config.clone(), creds.clone(), endpoint.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(aws)
                    .args(["--endpoint-url", &endpoint])
                    .args(&args)
                    .env("AWS_ACCESS_KEY_ID", &creds.access)
                    .env("AWS_SECRET_ACCESS_KEY", &creds.secret)
                    .env("AWS_CONFIG_FILE", &config)
                    .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
                    .output()
                    .expect("run aws")
            })
            .await
            .unwrap()
        }
    };
    let back = work.path().join("back.bin");
    for args in [
        vec![
            "s3".into(),
            "cp".into(),
            src.display().to_string(),
            "s3://project_1/cli/big.bin".into(),
        ],
        vec!["s3".into(), "ls".into(), "s3://project_1/cli/".into()],
        vec![
            "s3".into(),
            "cp".into(),
            "s3://project_1/cli/big.bin".into(),
            back.display().to_string(),
        ],
    ] {
        let out = run(args.clone()).await;
        assert!(
            out.status.success(),
            "aws {args:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if args[1] == "ls" {
            assert!(String::from_utf8_lossy(&out.stdout).contains("big.bin"));
        }
    }
    assert_eq!(std::fs::read(&back).unwrap(), data);
}
