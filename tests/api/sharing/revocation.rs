//! Ending a share: unsharing, deleting the source bucket or project, and restarts cut reads
//! through the link off (also while reads race), and nothing revives them. Setup in `mod.rs`.

use reqwest::Method;
use serde_json::json;

use super::{
    assert_reads, bucket_names, link_reads, linked_world, listed_link, share, share_path,
    source_of_a, A, B, LINK, SHARED, TABLE,
};
use crate::helpers::{JsonClient, ADMIN_KEY};

#[tokio::test]
async fn unsharing_cuts_off_reads_through_the_link_and_resharing_restores_them() {
    let w = linked_world().await;
    assert_reads(&link_reads(&w).await, 200, "while shared");

    w.unshare_as(&w.key_a).await.expect(204);
    assert_reads(&link_reads(&w).await, 403, "after unshare");
    let source = w.source_bucket().await;
    assert_eq!(source["shared_with"], json!([]));
    // The link itself stays in B's list, showing no tables.
    let list = w.b_buckets().await;
    let listed = listed_link(&list);
    let listed = listed.expect("link still listed");
    assert_eq!(listed["table_count"], 0, "{listed}");

    // Unsharing again: nothing to unshare.
    w.unshare_as(&w.key_a).await.expect_error(404);

    share(&w, B).await;
    assert_reads(&link_reads(&w).await, 200, "after re-sharing");
}

#[tokio::test]
async fn unshare_accepts_the_target_in_a_json_body() {
    let w = linked_world().await;
    w.app
        .call(
            Method::DELETE,
            &share_path("", A, SHARED),
            Some(w.key_a.as_str()),
            Some(json!({ "target_project_id": B })),
        )
        .await
        .expect(204);
    assert_reads(&link_reads(&w).await, 403, "after unshare by body");
}

#[tokio::test]
async fn deleting_the_source_bucket_cuts_off_reads_through_the_link() {
    let w = linked_world().await;
    let path = format!("/projects/{A}/buckets/{SHARED}?force=true");
    w.app.delete(&path, &w.key_a).await.expect(204);
    let when = "after the source bucket was deleted";
    assert_reads(&link_reads(&w).await, 403, when);

    // A new bucket under the same name is not shared: the stale link must not see it.
    w.app.create_bucket(A, &w.key_a, SHARED).await;
    let columns = [("secret", "VARCHAR")];
    w.app
        .create_table(A, &w.key_a, SHARED, TABLE, &columns, &[])
        .await;
    let when = "after the name was reused without a share";
    assert_reads(&link_reads(&w).await, 403, when);

    // B can still remove its dead link.
    w.unlink_as(&w.key_b, B, LINK).await.expect(204);
}

#[tokio::test]
async fn deleting_the_source_project_cuts_off_reads_through_the_link() {
    let w = linked_world().await;
    let path = format!("/projects/{A}");
    w.app.delete(&path, ADMIN_KEY).await.expect(204);
    let when = "after the source project was deleted";
    assert_reads(&link_reads(&w).await, 403, when);

    // Re-creating the project id does not revive the link.
    let key_a = w.app.create_project(A).await;
    w.app.create_bucket(A, &key_a, SHARED).await;
    let columns = [("id", "INTEGER")];
    w.app
        .create_table(A, &key_a, SHARED, TABLE, &columns, &[])
        .await;
    let when = "after the source project id was reused";
    assert_reads(&link_reads(&w).await, 403, when);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_racing_an_unshare_see_200_or_403_and_403_after_it() {
    let w = linked_world().await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for i in 0..4 {
        let client = w.app.client.clone();
        let key = w.key_b.clone();
        let url = if i % 2 == 0 {
            w.app.url(&format!(
                "/projects/{B}/buckets/{LINK}/tables/{TABLE}/preview"
            ))
        } else {
            w.app.url(&format!("/projects/{B}/buckets/{LINK}/tables"))
        };
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let res = client
                    .get(&url)
                    .bearer_auth(&key)
                    .send()
                    .await
                    .expect("request");
                seen.push(res.status().as_u16());
            }
            seen
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for _ in 0..5 {
        w.unshare_as(&w.key_a).await.expect(204);
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        share(&w, B).await;
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    w.unshare_as(&w.key_a).await.expect(204);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for r in readers {
        let seen = r.await.expect("reader task");
        total += seen.len();
        for s in &seen {
            assert!(*s == 200 || *s == 403, "a read racing unshare answered {s}");
        }
    }
    assert!(total > 0, "readers made no requests");
    assert_reads(&link_reads(&w).await, 403, "after the final unshare");
}

#[tokio::test]
async fn shares_links_and_their_revocation_survive_a_restart() {
    let w = linked_world().await;
    let w = w.restarted().await;
    assert_reads(&link_reads(&w).await, 200, "after a restart");
    let bucket = w
        .read(&format!("/projects/{B}/buckets/{LINK}"), &w.key_b)
        .await;
    assert_eq!(bucket["is_linked"], true, "{bucket}");
    assert_eq!(bucket["source_bucket_name"], SHARED, "{bucket}");

    w.unshare_as(&w.key_a).await.expect(204);
    let w = w.restarted().await;
    assert_reads(&link_reads(&w).await, 403, "after unshare and a restart");
}

#[tokio::test]
async fn a_recreated_target_project_does_not_inherit_the_old_share() {
    let w = linked_world().await;
    let path = format!("/projects/{B}");
    w.app.delete(&path, ADMIN_KEY).await.expect(204);
    let source = w.source_bucket().await;
    assert_eq!(
        source["shared_with"],
        json!([]),
        "share to a deleted project remains"
    );

    let key_b = w.app.create_project(B).await;
    let list = w.read(&format!("/projects/{B}/buckets"), &key_b).await;
    assert!(bucket_names(&list).is_empty(), "{list}");
    let r = w.link_as(&key_b, B, LINK, source_of_a()).await;
    r.expect_error(403);
}
