//! A full disk during an import: 507, the table exactly as before, imports work again once space
//! is freed. Needs root for a small tmpfs: without it, skipped with a reason locally, failed in CI.

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
    let fs = match Tmpfs::mount(96) {
        Ok(fs) => fs,
        Err(why) => {
            skip_outside_ci(&format!(
                "cannot mount a tmpfs for the disk-full test ({why})"
            ));
            return;
        }
    };
    let data_dir = fs.dir.path().join("data");
    let app = spawn_app_with(test_config(&data_dir)).await;
    let key = app
        .project_with_table(&[("id", "BIGINT"), ("name", "VARCHAR")], &["id"])
        .await;
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
    let free = duckbank::files::disk::available_space(fs.dir.path()).expect("statvfs");
    let filler = fs.dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; (free - 2 * 1024 * 1024) as usize]).expect("fill the disk");

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
