//! Downloading a track's original file (`GET /function/crud/<id>/file`).

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::{ClientError, Result};

/// The original file of a track, as [`Client::download`](crate::Client::download) wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// The server's name for the file, made safe to create in a folder: no path separators,
    /// no control characters, never empty.
    pub file_name: String,
    /// The file's media type (`audio/flac`, ...), when the server said.
    pub content_type: Option<String>,
    /// Bytes written.
    pub size: u64,
    /// SHA-256 of the bytes written, lowercase hex.
    pub sha256: String,
}

/// How far a download has got: bytes received, and the whole size when the server said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub received: u64,
    pub total: Option<u64>,
}

/// Streams the answer's body into `out`, hashing it on the way, and checks the hash against
/// the server's ETag when that is a SHA-256 (Legato's is): a download that arrives altered is
/// an error, never a silently wrong file.
pub(crate) async fn write_body<W, P>(
    response: reqwest::Response,
    fallback_name: &str,
    out: &mut W,
    mut progress: P,
) -> Result<Original>
where
    W: AsyncWrite + Unpin,
    P: FnMut(Received),
{
    let url = response.url().to_string();
    let headers = response.headers();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let file_name = header("content-disposition")
        .and_then(|value| disposition_file_name(&value))
        .map(|name| safe_file_name(&name))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| safe_file_name(fallback_name));
    let content_type = header("content-type");
    let expected = header("etag").and_then(|etag| sha256_etag(&etag));
    let total = response.content_length();

    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut body = response.bytes_stream();
    progress(Received { received, total });
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ClientError::from_reqwest(&e, &url))?;
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(ClientError::Output)?;
        received += chunk.len() as u64;
        progress(Received { received, total });
    }
    out.flush().await.map_err(ClientError::Output)?;

    let sha256 = hex::encode(hasher.finalize());
    if let Some(expected) = expected
        && expected != sha256
    {
        return Err(ClientError::Transport {
            url,
            reason: format!(
                "the file arrived altered: its SHA-256 is {sha256}, the server's is {expected}"
            ),
        });
    }
    Ok(Original {
        file_name,
        content_type,
        size: received,
        sha256,
    })
}

/// The file name of a `Content-Disposition` value: RFC 6266's `filename*` (UTF-8,
/// percent-encoded) when present, else the plain `filename`.
fn disposition_file_name(value: &str) -> Option<String> {
    let mut plain = None;
    for param in value.split(';').skip(1) {
        let Some((key, val)) = param.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let val = val.trim();
        if key == "filename*" {
            let (charset, rest) = val.split_once('\'')?;
            let (_language, encoded) = rest.split_once('\'')?;
            if charset.eq_ignore_ascii_case("utf-8") {
                let decoded = percent_encoding::percent_decode_str(encoded).decode_utf8();
                if let Ok(name) = decoded {
                    return Some(name.into_owned());
                }
            }
        } else if key == "filename" {
            plain = Some(val.trim_matches('"').replace("\\\"", "\""));
        }
    }
    plain
}

/// A name that is safe to create in the current folder: the last path component, without
/// control characters or leading dots (no hidden files, no `..`), at most 200 bytes.
pub fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|'))
        .collect();
    let mut cleaned = cleaned.trim().trim_start_matches('.').trim().to_owned();
    while cleaned.len() > 200 {
        cleaned.pop();
    }
    cleaned
}

/// The SHA-256 an ETag names, if it is one (`"<64 hex>"`, optionally weak).
fn sha256_etag(etag: &str) -> Option<String> {
    let tag = etag.trim().trim_start_matches("W/").trim_matches('"');
    (tag.len() == 64 && tag.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| tag.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_the_utf8_file_name() {
        let value = "attachment; filename=\"Beyonce - Halo.flac\"; filename*=UTF-8''Beyonc%C3%A9%20-%20Halo.flac";
        assert_eq!(
            disposition_file_name(value).as_deref(),
            Some("Beyoncé - Halo.flac")
        );
        assert_eq!(
            disposition_file_name("attachment; filename=\"a b.mp3\"").as_deref(),
            Some("a b.mp3")
        );
        assert_eq!(disposition_file_name("attachment"), None);
    }

    #[test]
    fn file_names_cannot_escape_the_folder() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(safe_file_name(".hidden"), "hidden");
        assert_eq!(safe_file_name(".."), "");
        assert_eq!(safe_file_name("a\nb\u{0}c.mp3"), "abc.mp3");
        assert_eq!(safe_file_name("x".repeat(300).as_str()).len(), 200);
    }

    #[test]
    fn only_sha256_etags_are_checked() {
        let sum = "a".repeat(64);
        assert_eq!(sha256_etag(&format!("\"{sum}\"")), Some(sum.clone()));
        assert_eq!(sha256_etag(&format!("W/\"{sum}\"")), Some(sum));
        assert_eq!(sha256_etag("\"abc\""), None);
    }
}
