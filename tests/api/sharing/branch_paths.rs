//! The branch-first paths (`/projects/{id}/branches/default/buckets/...`): share, link, read,
//! refused writes, unshare, read-only grant and unlink all work there too. Setup in `mod.rs`.

use serde_json::json;

use crate::helpers::JsonClient;

use super::{
    assert_reads, bucket_names, link_reads, new_table_body, source_of_a, table_names, world, A, B,
    LINK, SHARED, TABLE,
};

#[tokio::test]
async fn the_whole_flow_works_through_the_branch_first_paths() {
    let w = world().await;
    let pa = format!("/projects/{A}/branches/default/buckets");
    let pb = format!("/projects/{B}/branches/default/buckets");
    let (ka, kb) = (w.key_a.as_str(), w.key_b.as_str());
    let share = format!("{pa}/{SHARED}/share");
    let to_b = || json!({ "target_project_id": B });
    let linked = format!("{pb}/{LINK}/tables");
    let linked_table = format!("{linked}/{TABLE}");
    let linked_preview = format!("{linked}/{TABLE}/preview");
    let source_tables = format!("{pa}/{SHARED}/tables");
    let grant = format!("{pa}/{SHARED}/grant-readonly");

    let shared = w.app.post(&share, ka, to_b()).await.expect(200);
    assert_eq!(shared["shared_with"], json!([B]));
    let link = format!("{pb}/{LINK}/link");
    let linked_bucket = w.app.post(&link, kb, source_of_a()).await.expect(201);
    assert_eq!(linked_bucket["is_linked"], true);

    let tables = w.read(&linked, kb).await;
    assert_eq!(table_names(&tables), vec!["customers", TABLE]);
    w.read(&linked_table, kb).await;
    let preview = w.read(&linked_preview, kb).await;
    assert_eq!(preview["rows"].as_array().unwrap().len(), 2);
    // The seed-style paths see the same link.
    let when = "seed paths after a branch-path link";
    assert_reads(&link_reads(&w).await, 200, when);

    // Writes through the link are refused here too.
    let r = w.app.post(&linked, kb, new_table_body("sneaky")).await;
    r.expect_error(403);
    w.app.delete(&linked_table, kb).await.expect_error(403);

    // Unshare through the branch path cuts the link off; re-share restores it.
    let unshare = format!("{share}?target_project_id={B}");
    w.app.delete(&unshare, ka).await.expect(204);
    w.app.get(&linked_preview, kb).await.expect_error(403);
    w.app.post(&share, ka, to_b()).await.expect(200);
    w.app.get(&linked_preview, kb).await.expect(200);

    // Read-only grant through the branch path.
    w.app.post(&grant, ka, json!({})).await.expect(200);
    let blocked = new_table_body("blocked");
    let r = w.app.post(&source_tables, ka, blocked).await;
    r.expect_error(403);
    w.app.delete(&grant, ka).await.expect(204);
    let allowed = new_table_body("allowed");
    w.app.post(&source_tables, ka, allowed).await.expect(201);

    // Unlink through the branch path.
    w.app.delete(&link, kb).await.expect(204);
    let list = w.read(&pb, kb).await;
    assert!(bucket_names(&list).is_empty(), "{list}");
    let preview = w
        .read(&format!("{source_tables}/{TABLE}/preview"), ka)
        .await;
    assert_eq!(preview["total_row_count"], 2);
}
