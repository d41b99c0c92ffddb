//! A full disk: imports, chunks and catalog writes answer a clean 507 (no server paths), reads go
//! on, nothing committed is lost and writes work again once space is freed. Needs root for a small
//! tmpfs: without it, skipped with a reason locally, failed in CI.

use serde_json::{json, Value};

use crate::helpers::*;

/// A tmpfs mounted on a fresh temp dir, unmounted on drop.
pub(crate) struct Tmpfs {
    pub(crate) dir: tempfile::TempDir,
}

impl Tmpfs {
    pub(crate) fn mount(size_mib: u32) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !status.status.success() {
            return Err(String::from_utf8_lossy(&status.stderr).trim().to_string());
        }
        Ok(Self { dir })
    }
}

/// A tmpfs of `size_mib`, or `None` (after saying why) where mounting is not allowed.
fn tmpfs_or_skip(size_mib: u32) -> Option<Tmpfs> {
    match Tmpfs::mount(size_mib) {
        Ok(fs) => Some(fs),
        Err(why) => {
            skip_outside_ci(&format!(
                "cannot mount a tmpfs for a disk-full test ({why})"
            ));
            None
        }
    }
}

/// A server whose data dir is on a fresh tmpfs of `size_mib`, with project 1's table `b.t`
/// (`id BIGINT` primary key, `name VARCHAR`); `None` (skipped) where no tmpfs can be mounted.
async fn table_on_tmpfs(size_mib: u32) -> Option<(Tmpfs, TestApp, String)> {
    let fs = tmpfs_or_skip(size_mib)?;
    let app = spawn_app_with(test_config(&fs.dir.path().join("data"))).await;
    let key = app
        .project_with_table(&[("id", "BIGINT"), ("name", "VARCHAR")], &["id"])
        .await;
    Some((fs, app, key))
}

/// Fills the filesystem of `dir` until about `leave` bytes are free; returns the filler.
fn fill_leaving(dir: &std::path::Path, leave: u64) -> std::path::PathBuf {
    let free = duckbank::files::disk::available_space(dir).expect("statvfs");
    let filler = dir.join("filler");
    std::fs::write(&filler, vec![0u8; free.saturating_sub(leave) as usize]).expect("fill the disk");
    filler
}

/// Fills the filesystem of `dir` to the last byte; returns the filler files.
fn fill_completely(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    use std::io::Write;
    let mut fillers = vec![fill_leaving(dir, 0)];
    // Whatever statvfs still counts (and partial pages) goes to small files until none fits.
    for i in 0.. {
        let path = dir.join(format!("filler-{i}"));
        let Ok(mut file) = std::fs::File::create(&path) else {
            break;
        };
        fillers.push(path);
        if file
            .write_all(&[0u8; 4096])
            .and_then(|()| file.sync_all())
            .is_err()
        {
            break;
        }
    }
    fillers
}

/// Checks a 507 body says the storage is full without naming any server path.
#[track_caller]
fn assert_clean_507(body: &Value, data_dir: &std::path::Path) {
    let text = body.to_string();
    let root = data_dir.parent().unwrap_or(data_dir);
    assert!(
        !text.contains(&*root.to_string_lossy()) && !text.contains("/tmp/"),
        "a 507 body names a server path: {text}"
    );
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// CSV of `rows` rows whose text does not compress: what DuckDB writes is about its size.
fn random_csv(rows: u64) -> Vec<u8> {
    let mut out = String::from("id,name\n");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..rows {
        let mut name = String::with_capacity(64);
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            name.push_str(&format!("{x:016x}"));
        }
        out.push_str(&format!("{i},{name}\n"));
    }
    out.into_bytes()
}

async fn rows_of(app: &TestApp, key: &str) -> Value {
    app.get(
        "/projects/1/buckets/b/tables/t/preview?limit=10000&order_by=id",
        key,
    )
    .await
    .expect(200)["rows"]
        .clone()
}

#[tokio::test]
async fn a_full_disk_fails_the_import_with_507_and_leaves_the_table_as_it_was() {
    let Some((fs, app, key)) = table_on_tmpfs(96).await else {
        return;
    };
    let small = app
        .client
        .post(app.url("/projects/1/files/content?name=small.csv"))
        .bearer_auth(&key)
        .body("id,name\n1,one\n2,two\n3,three\n")
        .send()
        .await
        .expect("upload");
    let small: Value = small.json().await.expect("json");
    app.post(
        "/projects/1/buckets/b/tables/t/import/file",
        &key,
        json!({ "file_id": small["id"] }),
    )
    .await
    .expect(200);
    let before = rows_of(&app, &key).await;
    assert_eq!(before.as_array().map(Vec::len), Some(3));

    let big = app
        .client
        .post(app.url("/projects/1/files/content?name=big.csv"))
        .bearer_auth(&key)
        .body(random_csv(300_000))
        .send()
        .await
        .expect("upload");
    assert_eq!(big.status().as_u16(), 201);
    let big: Value = big.json().await.expect("json");

    // Leave about 2 MiB free: far less than the ~20 MiB the import must write.
    let filler = fill_leaving(fs.dir.path(), 2 * 1024 * 1024);

    for incremental in [false, true] {
        let reply = app
            .post(
                "/projects/1/buckets/b/tables/t/import/file",
                &key,
                json!({ "file_id": big["id"], "import_options": { "incremental": incremental } }),
            )
            .await;
        let body = reply.expect_error(507);
        assert_eq!(body["error"], "insufficient_storage", "{body}");
        assert_clean_507(&body, &app.data_dir);
        assert_eq!(rows_of(&app, &key).await, before, "the table changed");
    }

    std::fs::remove_file(&filler).expect("free the disk");
    let done = app
        .post(
            "/projects/1/buckets/b/tables/t/import/file",
            &key,
            json!({ "file_id": big["id"] }),
        )
        .await
        .expect(200);
    assert_eq!(done["table_rows_after"], 300_000);
    drop(app);
}

/// Uploads `data` as a single-shot file of project 1; returns the file JSON.
async fn upload(app: &TestApp, key: &str, name: &str, data: &[u8]) -> Value {
    let res = app
        .client
        .post(app.url(&format!("/projects/1/files/content?name={name}")))
        .bearer_auth(key)
        .body(data.to_vec())
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status().as_u16(), 201);
    res.json().await.expect("json")
}

/// The bytes of file `id` of project 1.
async fn download(app: &TestApp, key: &str, id: &Value) -> Vec<u8> {
    let id = id.as_str().expect("file id");
    let res = app
        .client
        .get(app.url(&format!("/projects/1/files/{id}/download")))
        .bearer_auth(key)
        .send()
        .await
        .expect("download");
    assert_eq!(res.status().as_u16(), 200);
    res.bytes().await.expect("body").to_vec()
}

/// The bucket names of project 1, sorted.
async fn bucket_names(app: &TestApp, key: &str) -> Vec<String> {
    let list = app.get("/projects/1/buckets", key).await.expect(200);
    let items = list.as_array().or_else(|| list["buckets"].as_array());
    let mut names: Vec<String> = items
        .unwrap_or_else(|| panic!("no bucket list: {list}"))
        .iter()
        .map(|b| b["name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_full_catalog_answers_507_keeps_serving_reads_and_loses_nothing_committed() {
    let Some((fs, app, key)) = table_on_tmpfs(48).await else {
        return;
    };
    let csv = upload(&app, &key, "rows.csv", b"id,name\n1,one\n2,two\n3,three\n").await;
    app.post(
        "/projects/1/buckets/b/tables/t/import/file",
        &key,
        json!({ "file_id": csv["id"] }),
    )
    .await
    .expect(200);
    let rows = rows_of(&app, &key).await;

    // metadata.duckdb lives on the full volume: the next catalog writes cannot be logged.
    let fillers = fill_completely(fs.dir.path());
    let mut created = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let reply = app
            .post(
                "/projects/1/buckets",
                &key,
                json!({ "name": format!("c{i}") }),
            )
            .await;
        match reply.status.as_u16() {
            201 => created.push(format!("c{i}")),
            _ => {
                refused = Some(reply.expect_code(507, "insufficient_storage"));
                break;
            }
        }
    }
    let refused = refused.expect("no catalog write failed on a full volume");
    assert_clean_507(&refused, &app.data_dir);
    let refused = app
        .post(
            "/projects/1/files/prepare",
            &key,
            json!({ "filename": "x.csv" }),
        )
        .await
        .expect_code(507, "insufficient_storage");
    assert_clean_507(&refused, &app.data_dir);

    // Reads go on: the catalog, a table and a file.
    let mut expected: Vec<String> = created.iter().cloned().chain(["b".to_string()]).collect();
    expected.sort();
    assert_eq!(bucket_names(&app, &key).await, expected);
    assert_eq!(rows_of(&app, &key).await, rows);
    let csv_bytes = download(&app, &key, &csv["id"]).await;

    // Space back: writes work again, and a restart finds everything that was answered 2xx.
    for filler in fillers {
        std::fs::remove_file(filler).expect("free the disk");
    }
    app.create_bucket("1", &key, "after").await;
    expected.push("after".to_string());
    expected.sort();
    let app = app.restart().await;
    assert_eq!(bucket_names(&app, &key).await, expected);
    assert_eq!(rows_of(&app, &key).await, rows);
    assert_eq!(download(&app, &key, &csv["id"]).await, csv_bytes);
    drop(fs);
}

#[tokio::test]
async fn a_chunk_that_does_not_fit_on_the_disk_is_refused_with_507_and_leaves_nothing() {
    let Some(fs) = tmpfs_or_skip(32) else {
        return;
    };
    let data_dir = fs.dir.path().join("data");
    let app = spawn_app_with(test_config(&data_dir)).await;
    let key = app.create_project("1").await;
    let mib = 1024 * 1024;
    let session = app
        .post(
            "/projects/1/uploads",
            &key,
            json!({ "name": "big.bin", "total_size": 8 * mib, "chunk_size": 4 * mib }),
        )
        .await
        .expect(201);
    let id = session["upload_id"].as_str().expect("upload_id");
    // The session was admitted with room; other writers have taken it since.
    let filler = fill_leaving(fs.dir.path(), 2 * mib);
    let res = app
        .client
        .put(app.url(&format!("/projects/1/uploads/{id}/chunks/0")))
        .bearer_auth(&key)
        .body(vec![7u8; 4 * mib as usize])
        .send()
        .await
        .expect("put chunk");
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"], "insufficient_storage", "{body}");
    assert_clean_507(&body, &data_dir);
    let leftovers: Vec<_> = ["files/tmp", "files/uploads"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(data_dir.join(d))
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|e| e.path().is_file())
        .map(|e| e.path())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_file(filler).expect("free the disk");
    drop(app);
}
