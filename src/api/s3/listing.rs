//! ListBuckets and ListObjects (V2 and V1): prefix, delimiter with CommonPrefixes, max-keys,
//! and a continuation token that is the last key (or prefix) returned, so pages never repeat.

use axum::extract::Request;
use axum::response::Response;
use base64::Engine;

use super::sigv4::uri_encode;
use super::xml::{self, S3Error, S3Result};
use super::{etag_of, iso_date, BucketCall};
use crate::auth::scope::Need;
use crate::catalog::s3::ObjectRecord;
use crate::state::AppState;

/// Most rows read from the catalog per round while filling a page (a page of S3's largest
/// max-keys, 1 000, and one to tell whether more follow).
const BATCH: u64 = 1001;

pub async fn list_buckets(
    state: AppState,
    request: Request,
    seen: &mut super::Seen,
) -> S3Result<Response> {
    let (parts, _) = request.into_parts();
    let caller = super::auth::authenticate(&parts, &state).await?;
    seen.principal = Some(caller.principal.clone());
    let own = caller.principal.project().cloned();
    let buckets: Vec<(String, chrono::DateTime<chrono::Utc>)> = state.catalog.read(|m| {
        m.projects
            .values()
            .filter(|p| own.as_ref().is_none_or(|o| *o == p.id))
            .map(|p| (format!("project_{}", p.id), p.created_at))
            .collect()
    });
    let mut out = String::from(
        "<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>duckbank</ID><DisplayName>duckbank</DisplayName></Owner><Buckets>",
    );
    for (name, created) in buckets {
        out.push_str(&format!(
            "<Bucket>{}<CreationDate>{}</CreationDate></Bucket>",
            xml::element("Name", &name),
            iso_date(created)
        ));
    }
    out.push_str("</Buckets></ListAllMyBucketsResult>");
    Ok(xml::document(out))
}

enum Entry {
    Object(Box<ObjectRecord>),
    Prefix(String),
}

struct Page {
    entries: Vec<Entry>,
    truncated: bool,
    /// The last key or common prefix on the page: where the next page starts after.
    last: Option<String>,
}

/// One page of at most `max` entries after `after` (exclusive).
async fn page(
    state: &AppState,
    project: &crate::names::ProjectId,
    prefix: &str,
    delimiter: Option<&str>,
    after: Option<String>,
    max: usize,
) -> S3Result<Page> {
    let mut entries = Vec::new();
    // A continuation after a common prefix skips everything under it.
    let mut last_prefix = after.clone().filter(|a| {
        delimiter.is_some_and(|d| a.starts_with(prefix) && a.len() > prefix.len() && a.ends_with(d))
    });
    let mut cursor = after.clone();
    let mut last = None;
    if max == 0 {
        return Ok(Page {
            entries,
            truncated: false,
            last,
        });
    }
    loop {
        let (catalog, project, p, c) = (
            state.catalog.clone(),
            project.clone(),
            prefix.to_string(),
            cursor.clone(),
        );
        // One more than the page holds: a full page then knows at once whether more follow.
        let want = (max as u64 + 1).min(BATCH);
        let (batch, full) = crate::service::blocking(move || {
            catalog.list_objects(&project, &p, c.as_deref(), want)
        })
        .await?;
        for object in batch {
            let name = object.file.name.clone();
            cursor = Some(name.clone());
            if let Some(lp) = &last_prefix {
                if name.starts_with(lp.as_str()) {
                    continue;
                }
            }
            let common = delimiter.and_then(|d| {
                name[prefix.len()..]
                    .find(d)
                    .map(|i| name[..prefix.len() + i + d.len()].to_string())
            });
            if entries.len() == max {
                return Ok(Page {
                    entries,
                    truncated: true,
                    last,
                });
            }
            match common {
                Some(cp) => {
                    last = Some(cp.clone());
                    last_prefix = Some(cp.clone());
                    entries.push(Entry::Prefix(cp));
                }
                None => {
                    last = Some(name);
                    entries.push(Entry::Object(Box::new(object)));
                }
            }
        }
        if !full {
            return Ok(Page {
                entries,
                truncated: false,
                last,
            });
        }
        // Jump past the rest of a common prefix instead of reading every key under it.
        if let (Some(lp), Some(c)) = (&last_prefix, &cursor) {
            if c.starts_with(lp.as_str()) {
                cursor = Some(format!("{lp}\u{10FFFF}"));
            }
        }
    }
}

fn encode_token(last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last.as_bytes())
}

fn decode_token(token: &str) -> S3Result<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| S3Error::invalid_argument("The continuation token provided is incorrect"))
}

pub async fn list_objects(call: BucketCall) -> S3Result<Response> {
    call.require(Need::FileRead)?;
    let v2 = call.query("list-type").as_deref() == Some("2");
    let prefix = call.query("prefix").unwrap_or_default();
    let delimiter = call.query("delimiter").filter(|d| !d.is_empty());
    let url = call.query("encoding-type").as_deref() == Some("url");
    let max: usize = match call.query("max-keys") {
        None => 1000,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| n.min(1000) as usize)
            .ok_or_else(|| S3Error::invalid_argument("max-keys must be a non-negative integer"))?,
    };
    let token = call.query("continuation-token");
    let start_after = call.query("start-after").filter(|s| !s.is_empty());
    let marker = call.query("marker").filter(|s| !s.is_empty());
    let after = if v2 {
        match &token {
            Some(t) => Some(decode_token(t)?),
            None => start_after.clone(),
        }
    } else {
        marker.clone()
    };
    let page = page(
        &call.state,
        &call.project,
        &prefix,
        delimiter.as_deref(),
        after,
        max,
    )
    .await?;
    let enc = |s: &str| {
        if url {
            uri_encode(s.as_bytes(), true)
        } else {
            s.to_string()
        }
    };
    let mut out =
        String::from("<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    out.push_str(&xml::element("Name", &call.bucket));
    out.push_str(&xml::element("Prefix", &enc(&prefix)));
    if let Some(d) = &delimiter {
        out.push_str(&xml::element("Delimiter", &enc(d)));
    }
    out.push_str(&format!("<MaxKeys>{max}</MaxKeys>"));
    if url {
        out.push_str("<EncodingType>url</EncodingType>");
    }
    out.push_str(&format!("<IsTruncated>{}</IsTruncated>", page.truncated));
    if v2 {
        out.push_str(&format!("<KeyCount>{}</KeyCount>", page.entries.len()));
        if let Some(t) = &token {
            out.push_str(&xml::element("ContinuationToken", t));
        }
        if let Some(s) = &start_after {
            out.push_str(&xml::element("StartAfter", &enc(s)));
        }
        if let (true, Some(last)) = (page.truncated, &page.last) {
            out.push_str(&xml::element("NextContinuationToken", &encode_token(last)));
        }
    } else {
        out.push_str(&xml::element(
            "Marker",
            &enc(marker.as_deref().unwrap_or("")),
        ));
        if let (true, Some(last)) = (page.truncated, &page.last) {
            out.push_str(&xml::element("NextMarker", &enc(last)));
        }
    }
    for entry in &page.entries {
        match entry {
            Entry::Object(object) => out.push_str(&format!(
                "<Contents>{}<LastModified>{}</LastModified>{}<Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                xml::element("Key", &enc(&object.file.name)),
                iso_date(object.file.created_at),
                xml::element("ETag", &etag_of(object)),
                object.file.size_bytes
            )),
            Entry::Prefix(p) => out.push_str(&format!(
                "<CommonPrefixes>{}</CommonPrefixes>",
                xml::element("Prefix", &enc(p))
            )),
        }
    }
    out.push_str("</ListBucketResult>");
    Ok(xml::document(out))
}
