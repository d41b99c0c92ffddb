//! Who may share and link: bad or missing targets, repeated shares, other projects' keys, and
//! the admin acting for both projects (recording the share it implies). Setup in `mod.rs`.

use serde_json::json;

use super::{assert_reads, link, link_reads, share, source_of_a, world, A, B, LINK, SHARED};
use crate::helpers::ADMIN_KEY;

#[tokio::test]
async fn sharing_with_a_missing_project_answers_404() {
    let w = world().await;
    let r = w.share_as(&w.key_a, SHARED, "999").await;
    r.expect_error(404);
    let source = w.source_bucket().await;
    assert_eq!(source["shared_with"], json!([]));
    // Sharing a missing bucket is 404 too.
    let r = w.share_as(&w.key_a, "in_c_nope", B).await;
    r.expect_error(404);
}

#[tokio::test]
async fn sharing_twice_answers_409() {
    let w = world().await;
    share(&w, B).await;
    let r = w.share_as(&w.key_a, SHARED, B).await;
    let body = r.expect_error(409);
    assert_eq!(body["error"], "already_shared");
    let source = w.source_bucket().await;
    assert_eq!(source["shared_with"], json!([B]));
}

#[tokio::test]
async fn sharing_with_its_own_project_answers_400() {
    let w = world().await;
    let r = w.share_as(&w.key_a, SHARED, A).await;
    r.expect_error(400);
    let r = w.share_as(&w.key_a, SHARED, "../200").await;
    r.expect_error(400);
}

#[tokio::test]
async fn sharing_with_several_projects_lists_them_all() {
    let w = world().await;
    w.app.create_project("300").await;
    share(&w, B).await;
    let reply = share(&w, "300").await;
    assert_eq!(reply["shared_with"], json!([B, "300"]), "{reply}");
}

#[tokio::test]
async fn another_projects_key_cannot_share_unshare_or_grant_on_a_bucket() {
    let w = world().await;
    // B tries to share A's bucket with itself.
    let r = w.share_as(&w.key_b, SHARED, B).await;
    let body = r.expect_error(403);
    assert_eq!(body["error"], "forbidden");
    let source = w.source_bucket().await;
    assert_eq!(
        source["shared_with"],
        json!([]),
        "B's attempt left a share behind"
    );
    // And B still cannot link.
    let r = w.link_as(&w.key_b, B, LINK, source_of_a()).await;
    r.expect_error(403);

    // Once A shares, B cannot take it back on A's behalf, nor grant or revoke read-only.
    share(&w, B).await;
    w.unshare_as(&w.key_b).await.expect_error(403);
    w.grant_as(&w.key_b, A, SHARED).await.expect_error(403);
    w.revoke_as(&w.key_b, A, SHARED).await.expect_error(403);
    // A cannot act on B's link or create links in B.
    link(&w).await;
    w.unlink_as(&w.key_a, B, LINK).await.expect_error(403);
    let r = w.link_as(&w.key_a, B, "other", source_of_a()).await;
    r.expect_error(403);
}

#[tokio::test]
async fn the_admin_can_share_and_link_on_behalf_of_projects() {
    let w = world().await;
    w.share_as(ADMIN_KEY, SHARED, B).await.expect(200);
    let r = w.link_as(ADMIN_KEY, B, LINK, source_of_a()).await;
    r.expect(201);
    let when = "after the admin shared and linked";
    assert_reads(&link_reads(&w).await, 200, when);
}

#[tokio::test]
async fn the_admin_can_link_a_bucket_that_was_not_shared_and_that_records_the_share() {
    let w = world().await;
    let r = w.link_as(ADMIN_KEY, B, LINK, source_of_a()).await;
    let bucket = r.expect(201);
    assert_eq!(bucket["is_linked"], true, "{bucket}");
    assert_eq!(bucket["source_project_id"], A, "{bucket}");
    // The operator acted for both projects: the share is on record, and B reads through it.
    let source = w.source_bucket().await;
    assert_eq!(source["shared_with"], json!([B]), "{source}");
    assert_reads(&link_reads(&w).await, 200, "after the admin linked");
    // The owner can still take it back, which cuts the link off as usual.
    w.unshare_as(&w.key_a).await.expect(204);
    assert_reads(&link_reads(&w).await, 403, "after the owner unshared");
}

#[tokio::test]
async fn a_refused_admin_link_leaves_no_share_behind() {
    let w = world().await;
    w.app.create_bucket(B, &w.key_b, "taken").await;
    let cases = [
        ("taken", source_of_a(), 409),
        (
            LINK,
            json!({ "source_project_id": A, "source_bucket_name": "in_c_nope" }),
            404,
        ),
        (
            LINK,
            json!({ "source_project_id": "999", "source_bucket_name": SHARED }),
            404,
        ),
    ];
    for (name, body, status) in cases {
        let r = w.link_as(ADMIN_KEY, B, name, body).await;
        r.expect_error(status);
    }
    // Linking into the source project itself stays a 400 for the admin too.
    let r = w.link_as(ADMIN_KEY, A, "self_link", source_of_a()).await;
    r.expect_error(400);
    let source = w.source_bucket().await;
    assert_eq!(source["shared_with"], json!([]), "{source}");
    // And a project key still needs the share.
    let r = w.link_as(&w.key_b, B, LINK, source_of_a()).await;
    r.expect_error(403);
}
