//! `Content-Encoding: aws-chunked` bodies (what SDKs send with streaming SigV4 or trailing
//! checksums): decoded as they stream, each chunk's signature checked when the body is signed.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::auth::ChunkSigning;
use super::sigv4;

/// Longest chunk header line accepted (`hex;chunk-signature=<64 hex>`).
const MAX_HEADER_LINE: usize = 256;

enum State {
    /// Waiting for a chunk header line.
    Header,
    /// Inside a chunk: bytes still to pass on, then its CRLF.
    Data { left: usize },
    /// After the last chunk: trailers until the end.
    Trailer,
}

struct Decoder<S> {
    inner: S,
    buf: BytesMut,
    state: State,
    signing: Option<ChunkSigning>,
    previous: String,
    /// The current chunk's data and its claimed signature, kept while signed chunks arrive.
    chunk: Vec<u8>,
    claimed: Option<String>,
    ended: bool,
}

/// The decoded body of an `aws-chunked` stream; a malformed or wrongly signed chunk ends it
/// with an error, so the upload is refused.
pub fn decode<S, E>(
    inner: S,
    signing: Option<ChunkSigning>,
) -> impl Stream<Item = Result<Bytes, String>> + Send + Unpin
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display,
{
    let previous = signing.as_ref().map(|s| s.seed.clone()).unwrap_or_default();
    let decoder = Decoder {
        inner,
        buf: BytesMut::new(),
        state: State::Header,
        signing,
        previous,
        chunk: Vec::new(),
        claimed: None,
        ended: false,
    };
    Box::pin(futures_util::stream::unfold(decoder, |mut d| async move {
        if d.ended {
            return None;
        }
        match d.next_piece().await {
            Ok(Some(bytes)) => Some((Ok(bytes), d)),
            Ok(None) => None,
            Err(e) => {
                d.ended = true;
                Some((Err(e), d))
            }
        }
    }))
}

impl<S, E> Decoder<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    /// Reads more of the raw body; `false` at its end.
    async fn fill(&mut self) -> Result<bool, String> {
        match self.inner.next().await {
            Some(Ok(bytes)) => {
                self.buf.extend_from_slice(&bytes);
                Ok(true)
            }
            Some(Err(e)) => Err(e.to_string()),
            None => Ok(false),
        }
    }

    /// The next line (without CRLF).
    async fn line(&mut self) -> Result<Option<String>, String> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf.split_to(pos);
                self.buf.advance(2);
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            if self.buf.len() > MAX_HEADER_LINE {
                return Err("aws-chunked: chunk header line too long".into());
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    fn check_chunk(&mut self) -> Result<(), String> {
        let Some(signing) = &self.signing else {
            return Ok(());
        };
        let expected = sigv4::chunk_signature(
            &signing.key,
            &signing.amz_date,
            &signing.scope,
            &self.previous,
            &self.chunk,
        );
        if self.claimed.as_deref() != Some(expected.as_str()) {
            return Err("aws-chunked: a chunk signature does not match".into());
        }
        self.previous = expected;
        self.chunk.clear();
        Ok(())
    }

    async fn next_piece(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            match self.state {
                State::Header => {
                    let Some(line) = self.line().await? else {
                        return Err("aws-chunked: body ended before its last chunk".into());
                    };
                    let (size, ext) = line.split_once(';').unwrap_or((line.as_str(), ""));
                    let size = usize::from_str_radix(size.trim(), 16)
                        .map_err(|_| "aws-chunked: bad chunk size".to_string())?;
                    self.claimed = ext
                        .trim()
                        .strip_prefix("chunk-signature=")
                        .map(|s| s.trim().to_ascii_lowercase());
                    if self.signing.is_some() && self.claimed.is_none() {
                        return Err("aws-chunked: a chunk has no signature".into());
                    }
                    if size == 0 {
                        self.check_chunk()?;
                        self.state = State::Trailer;
                    } else {
                        self.state = State::Data { left: size };
                    }
                }
                State::Data { left } => {
                    if left == 0 {
                        while self.buf.len() < 2 {
                            if !self.fill().await? {
                                return Err("aws-chunked: body ended inside a chunk".into());
                            }
                        }
                        if &self.buf[..2] != b"\r\n" {
                            return Err("aws-chunked: chunk not followed by CRLF".into());
                        }
                        self.buf.advance(2);
                        self.check_chunk()?;
                        self.state = State::Header;
                        continue;
                    }
                    if self.buf.is_empty() && !self.fill().await? {
                        return Err("aws-chunked: body ended inside a chunk".into());
                    }
                    let n = left.min(self.buf.len());
                    let piece = self.buf.split_to(n).freeze();
                    if self.signing.is_some() {
                        self.chunk.extend_from_slice(&piece);
                    }
                    self.state = State::Data { left: left - n };
                    return Ok(Some(piece));
                }
                State::Trailer => {
                    // Trailing headers (x-amz-checksum-*, x-amz-trailer-signature) are
                    // read and dropped: the content's SHA-256 is computed as it is stored.
                    while self.fill().await? {
                        self.buf.clear();
                    }
                    return Ok(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(raw: &'static [u8], split: usize) -> Result<Vec<u8>, String> {
        let pieces: Vec<Result<Bytes, String>> = raw
            .chunks(split)
            .map(|c| Ok(Bytes::from_static(c)))
            .collect();
        let mut out = Vec::new();
        let mut s = decode(futures_util::stream::iter(pieces), None);
        while let Some(piece) = s.next().await {
            out.extend_from_slice(&piece?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn decodes_unsigned_chunks_with_a_trailer() {
        let raw = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n";
        for split in [1, 3, 100] {
            assert_eq!(collect(raw, split).await.unwrap(), b"hello world");
        }
        assert!(collect(b"5\r\nhel", 2).await.is_err());
        assert!(collect(b"zz\r\n", 2).await.is_err());
    }
}
