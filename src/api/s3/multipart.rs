//! Multipart uploads: Create, UploadPart, ListParts, Complete (ETag = MD5 of the part MD5s
//! plus `-N`, as S3 computes it) and Abort.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::objects::content_md5;
use super::xml::{self, S3Error, S3Result};
use super::BucketCall;
use crate::auth::scope::Need;

pub async fn create(call: BucketCall, key: String) -> S3Result<Response> {
    call.require(Need::FileUpload)?;
    let content_type = call.header("content-type").map(str::to_string);
    let upload = call
        .state
        .files
        .create_multipart(&call.project, key, content_type)
        .await?;
    Ok(xml::document(format!(
        "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{}{}{}</InitiateMultipartUploadResult>",
        xml::element("Bucket", &call.bucket),
        xml::element("Key", &upload.key),
        xml::element("UploadId", &upload.upload_id)
    )))
}

pub async fn upload_part(call: BucketCall, upload_id: String) -> S3Result<Response> {
    call.require(Need::FileUpload)?;
    if call.header("x-amz-copy-source").is_some() {
        return Err(S3Error::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "UploadPartCopy is not supported",
        ));
    }
    let number: u32 = call
        .query("partNumber")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| S3Error::invalid_argument("partNumber must be an integer"))?;
    let md5 = content_md5(&call)?;
    let sha = call.expected_sha256();
    let (call, body, length) = call.into_content();
    let etag = call
        .state
        .files
        .put_part(
            &call.project,
            &upload_id,
            number,
            body,
            length,
            (sha.as_deref(), md5),
        )
        .await?;
    Ok(([(header::ETAG, etag)], "").into_response())
}

pub async fn list_parts(call: BucketCall, key: String, upload_id: String) -> S3Result<Response> {
    call.require(Need::FileUpload)?;
    let parts = call.state.files.parts(&call.project, &upload_id).await?;
    let mut out = format!(
        "<ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{}{}{}<IsTruncated>false</IsTruncated>",
        xml::element("Bucket", &call.bucket),
        xml::element("Key", &key),
        xml::element("UploadId", &upload_id)
    );
    for part in parts {
        out.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber>{}<Size>{}</Size></Part>",
            part.number,
            xml::element("ETag", &part.etag()),
            part.size
        ));
    }
    out.push_str("</ListPartsResult>");
    Ok(xml::document(out))
}

pub async fn complete(call: BucketCall, key: String, upload_id: String) -> S3Result<Response> {
    call.require(Need::FileUpload)?;
    let upload = call
        .state
        .files
        .multipart(&call.project, &upload_id)
        .await?;
    if upload.key != key {
        return Err(S3Error::new(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "this upload belongs to another key",
        ));
    }
    let (call, body) = call.small_body().await?;
    let mut chosen = Vec::new();
    for record in xml::records(&body, "Part", &["PartNumber", "ETag"])? {
        let (Some(Some(number)), Some(Some(etag))) = (record.first(), record.get(1)) else {
            return Err(S3Error::malformed_xml(
                "each Part needs a PartNumber and an ETag",
            ));
        };
        let number: u32 = number
            .trim()
            .parse()
            .map_err(|_| S3Error::malformed_xml("PartNumber must be an integer"))?;
        chosen.push((number, etag.trim().to_string()));
    }
    let (rec, etag) = call
        .state
        .files
        .complete_multipart(&call.project, &upload_id, chosen)
        .await?;
    Ok(xml::document(format!(
        "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{}{}{}</CompleteMultipartUploadResult>",
        xml::element("Bucket", &call.bucket),
        xml::element("Key", &rec.name),
        xml::element("ETag", &etag)
    )))
}

pub async fn abort(call: BucketCall, upload_id: String) -> S3Result<Response> {
    call.require(Need::FileUpload)?;
    call.state
        .files
        .abort_multipart(&call.project, &upload_id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
