//! Files API, downloads: headers, single and multiple ranges, HEAD and conditional requests
//! (If-None-Match, If-Range); not how the bytes got there.

use super::*;

/// A project with one 100-byte file; returns (app, key, file id, bytes).
async fn app_with_file() -> (TestApp, String, String, Vec<u8>) {
    let (app, key) = spawn_app_with_project().await;
    let data = bytes_of(100, 9);
    let file = upload(&app, "1", &key, "r.bin", &data).await;
    let id = file["id"].as_str().unwrap().to_string();
    (app, key, id, data)
}

#[tokio::test]
async fn a_download_returns_the_same_bytes_with_etag_ranges_disposition_and_type() {
    let (app, key) = spawn_app_with_project().await;
    let data = b"col\nvalue\n";
    let file = upload(&app, "1", &key, "a.csv", data).await;
    let dl = download(&app, "1", &key, file["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes, data);
    assert_eq!(dl.header("etag"), format!("\"{}\"", sha256_hex(data)));
    assert_eq!(dl.header("accept-ranges"), "bytes");
    assert_eq!(dl.header("content-length"), data.len().to_string());
    let disposition = dl.header("content-disposition");
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(disposition.contains("filename=\"a.csv\""), "{disposition}");
    assert_eq!(
        dl.header("content-type"),
        "text/csv",
        "guessed from the name"
    );
}

/// Found by schemathesis: a stored content type that is no valid header value (here a control
/// character given as `?content_type=`) made the download go out without any Content-Type.
#[tokio::test]
async fn a_content_type_that_cannot_be_a_header_is_replaced_by_the_guessed_one() {
    let (app, key) = spawn_app_with_project().await;
    let file = send(
        request(
            &app,
            Method::POST,
            "/projects/1/files/content?name=a.csv&content_type=%01",
            Some(&key),
        )
        .body(b"a\n".to_vec()),
    )
    .await
    .reply()
    .expect(201);
    let dl = download(&app, "1", &key, file["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.header("content-type"), "text/csv");
}

#[tokio::test]
async fn a_single_range_is_answered_with_206_and_the_exact_bytes() {
    let (app, key, id, data) = app_with_file().await;
    let res = download_range(&app, &key, &id, "bytes=0-9").await;
    res.expect_status(206);
    assert_eq!(res.header("content-range"), "bytes 0-9/100");
    assert_eq!(res.header("content-length"), "10");
    assert_eq!(res.bytes, &data[0..10]);
}

#[tokio::test]
async fn a_suffix_range_returns_the_last_bytes() {
    let (app, key, id, data) = app_with_file().await;
    let res = download_range(&app, &key, &id, "bytes=-5").await;
    res.expect_status(206);
    assert_eq!(res.header("content-range"), "bytes 95-99/100");
    assert_eq!(res.bytes, &data[95..]);
}

#[tokio::test]
async fn an_open_range_returns_the_rest_of_the_file() {
    let (app, key, id, data) = app_with_file().await;
    let res = download_range(&app, &key, &id, "bytes=10-").await;
    res.expect_status(206);
    assert_eq!(res.header("content-range"), "bytes 10-99/100");
    assert_eq!(res.bytes, &data[10..]);
}

#[tokio::test]
async fn multiple_ranges_are_answered_as_multipart_byteranges() {
    let (app, key, id, data) = app_with_file().await;
    let res = download_range(&app, &key, &id, "bytes=0-1,4-5").await;
    res.expect_status(206);
    let ct = res.header("content-type").to_string();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("content-type {ct}"));
    assert_eq!(res.header("content-length"), res.bytes.len().to_string());
    for (start, end) in [(0usize, 1usize), (4, 5)] {
        let mut part = format!("--{boundary}\r\n").into_bytes();
        part.extend_from_slice(b"Content-Type: application/octet-stream\r\n");
        part.extend_from_slice(
            format!("Content-Range: bytes {start}-{end}/100\r\n\r\n").as_bytes(),
        );
        part.extend_from_slice(&data[start..=end]);
        part.extend_from_slice(b"\r\n");
        assert!(
            contains(&res.bytes, &part),
            "part {start}-{end} missing in {:?}",
            String::from_utf8_lossy(&res.bytes)
        );
    }
    assert!(res
        .bytes
        .ends_with(format!("--{boundary}--\r\n").as_bytes()));
}

#[tokio::test]
async fn overlapping_ranges_are_coalesced_so_the_file_is_sent_once() {
    let (app, key, id, data) = app_with_file().await;
    let header = format!("bytes={}", vec!["0-99"; 16].join(","));
    let res = download_range(&app, &key, &id, &header).await;
    res.expect_status(206);
    assert_eq!(res.header("content-range"), "bytes 0-99/100");
    assert_eq!(res.bytes, data);

    // Touching and overlapping pieces become one range, in ascending order.
    let res = download_range(&app, &key, &id, "bytes=50-99,0-49,10-20").await;
    res.expect_status(206);
    assert_eq!(res.header("content-range"), "bytes 0-99/100");
    assert_eq!(res.bytes, data);
}

#[tokio::test]
async fn an_unsatisfiable_range_is_416_with_the_size() {
    let (app, key, id, _) = app_with_file().await;
    let res = download_range(&app, &key, &id, "bytes=1000-").await;
    assert_eq!(res.header("content-range"), "bytes */100");
    res.reply().expect_error(416);
}

#[tokio::test]
async fn a_malformed_range_is_ignored_and_the_full_body_sent() {
    let (app, key, id, data) = app_with_file().await;
    let res = download_range(&app, &key, &id, "bytes=abc").await;
    res.expect_status(200);
    assert_eq!(res.bytes, data);
    assert!(res.headers.get("content-range").is_none());
}

#[tokio::test]
async fn head_returns_the_headers_without_a_body() {
    let (app, key, id, data) = app_with_file().await;
    let res = head(&app, &format!("/projects/1/files/{id}/download"), &key).await;
    res.expect_status(200);
    assert!(res.bytes.is_empty());
    assert_eq!(res.header("content-length"), "100");
    assert_eq!(res.header("etag"), format!("\"{}\"", sha256_hex(&data)));
    assert_eq!(res.header("accept-ranges"), "bytes");
    assert!(res.header("content-disposition").contains("r.bin"));
}

#[tokio::test]
async fn head_with_a_range_reports_the_partial_length_without_a_body() {
    let (app, key, id, _) = app_with_file().await;
    let res = send(
        request(
            &app,
            Method::HEAD,
            &format!("/projects/1/files/{id}/download"),
            Some(&key),
        )
        .header("range", "bytes=0-9"),
    )
    .await;
    res.expect_status(206);
    assert!(res.bytes.is_empty());
    assert_eq!(res.header("content-range"), "bytes 0-9/100");
    assert_eq!(res.header("content-length"), "10");
}

#[tokio::test]
async fn if_none_match_with_the_etag_is_304() {
    let (app, key, id, data) = app_with_file().await;
    let etag = format!("\"{}\"", sha256_hex(&data));
    let res = download(&app, "1", &key, &id, &[("if-none-match", &etag)]).await;
    res.expect_status(304);
    assert!(res.bytes.is_empty());
    assert_eq!(res.header("etag"), etag);
    let other = download(&app, "1", &key, &id, &[("if-none-match", "\"other\"")]).await;
    other.expect_status(200);
    assert_eq!(other.bytes, data);
}

#[tokio::test]
async fn if_none_match_star_is_304() {
    let (app, key, id, _) = app_with_file().await;
    download(&app, "1", &key, &id, &[("if-none-match", "*")])
        .await
        .expect_status(304);
}

#[tokio::test]
async fn if_range_with_a_different_etag_sends_the_full_file() {
    let (app, key, id, data) = app_with_file().await;
    let res = download(
        &app,
        "1",
        &key,
        &id,
        &[("range", "bytes=0-9"), ("if-range", "\"0000stale\"")],
    )
    .await;
    res.expect_status(200);
    assert_eq!(res.bytes, data);
}

#[tokio::test]
async fn if_range_with_the_current_etag_honours_the_range() {
    let (app, key, id, data) = app_with_file().await;
    let etag = format!("\"{}\"", sha256_hex(&data));
    let res = download(
        &app,
        "1",
        &key,
        &id,
        &[("range", "bytes=0-9"), ("if-range", &etag)],
    )
    .await;
    res.expect_status(206);
    assert_eq!(res.bytes, &data[..10]);
}
