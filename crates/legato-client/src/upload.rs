//! What [`Client::add`](crate::Client::add) uploads, and how it is streamed.
//!
//! The file is never read into memory: it is opened with tokio, read in 64 KiB chunks by a
//! `ReaderStream` as the connection asks for them, and each chunk is counted on its way into
//! the multipart body, which is what drives the progress callback. The part's length is
//! declared, so the request carries a `Content-Length` and the server can refuse an oversized
//! upload before it is sent.

use std::path::{Path, PathBuf};
use std::pin::Pin;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::ReaderStream;

use crate::error::ClientError;

/// Bytes read from the source at a time.
const CHUNK: usize = 64 * 1024;

/// The audio to upload: a file on disk, or any async reader; and, optionally, the album art
/// of its folder.
pub struct Song {
    source: Source,
    cover: Option<PathBuf>,
}

/// Largest cover image a server takes beside a song (its `cover-too-large` limit).
pub const MAX_COVER_BYTES: u64 = 5 * 1024 * 1024;

enum Source {
    Path(PathBuf),
    Reader {
        reader: Pin<Box<dyn AsyncRead + Send>>,
        file_name: String,
        len: Option<u64>,
    },
}

impl Song {
    /// A file on disk; its name is sent as the part's file name (the server's fallback title).
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self {
            source: Source::Path(path.into()),
            cover: None,
        }
    }

    /// Sends the image file `cover` (JPEG, PNG or WebP, at most [`MAX_COVER_BYTES`]) beside
    /// the song as its folder's art: the server makes it the track's cover unless the
    /// audio carries one in its tags.
    pub fn with_cover(mut self, cover: impl Into<PathBuf>) -> Self {
        self.cover = Some(cover.into());
        self
    }

    /// The folder art sent beside the song, if any.
    pub(crate) fn cover(&self) -> Option<&Path> {
        self.cover.as_deref()
    }

    /// Any reader, sent under `file_name`. With `len`, exactly that many bytes are sent and
    /// the request declares its length; without it, the body is sent chunked.
    pub fn reader(
        reader: impl AsyncRead + Send + 'static,
        file_name: impl Into<String>,
        len: Option<u64>,
    ) -> Self {
        Self {
            source: Source::Reader {
                reader: Box::pin(reader),
                file_name: file_name.into(),
                len,
            },
            cover: None,
        }
    }
}

impl std::fmt::Debug for Song {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::Path(path) => f.debug_tuple("Song::Path").field(path).finish(),
            Source::Reader { file_name, len, .. } => f
                .debug_struct("Song::Reader")
                .field("file_name", file_name)
                .field("len", len)
                .finish_non_exhaustive(),
        }
    }
}

impl From<PathBuf> for Song {
    fn from(path: PathBuf) -> Self {
        Self::path(path)
    }
}

impl From<&Path> for Song {
    fn from(path: &Path) -> Self {
        Self::path(path)
    }
}

impl From<&PathBuf> for Song {
    fn from(path: &PathBuf) -> Self {
        Self::path(path.clone())
    }
}

/// How far an upload is: bytes of audio handed to the connection so far, of `total` when the
/// length is known. Reported once with `sent == 0` before the first byte, then after every
/// chunk; the last report has `sent == total`, after which the server packages the track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub sent: u64,
    pub total: Option<u64>,
}

impl Progress {
    /// Every byte has been sent (the server is now working on the track).
    pub fn is_done(&self) -> bool {
        self.total.is_some_and(|total| self.sent >= total)
    }
}

/// The multipart part holding a folder's art, read whole (it is small).
pub(crate) async fn cover_part(path: &Path) -> Result<reqwest::multipart::Part, ClientError> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|source| ClientError::File {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(reqwest::multipart::Part::bytes(bytes).file_name("cover"))
}

/// The multipart part holding the song, with its progress-counting body, and the song's
/// file name as it is (for the `file_name` field: the part's `filename` parameter carries a
/// version of it that any multipart parser reads, see [`header_safe`]).
pub(crate) async fn song_part<P>(
    song: Song,
    mut progress: P,
) -> Result<(reqwest::multipart::Part, String), ClientError>
where
    P: FnMut(Progress) + Send + 'static,
{
    let (reader, file_name, len): (Pin<Box<dyn AsyncRead + Send>>, String, Option<u64>) =
        match song.source {
            Source::Path(path) => {
                let file_error = |source| ClientError::File {
                    path: path.clone(),
                    source,
                };
                let file = tokio::fs::File::open(&path).await.map_err(file_error)?;
                let metadata = file.metadata().await.map_err(file_error)?;
                if !metadata.is_file() {
                    return Err(file_error(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "not a regular file",
                    )));
                }
                let file_name = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "song".to_owned());
                (Box::pin(file), file_name, Some(metadata.len()))
            }
            Source::Reader {
                reader,
                file_name,
                len,
            } => (reader, file_name, len),
        };

    progress(Progress {
        sent: 0,
        total: len,
    });
    let mut sent = 0u64;
    let count = move |chunk: std::io::Result<bytes::Bytes>| {
        if let Ok(bytes) = &chunk {
            sent += bytes.len() as u64;
            progress(Progress { sent, total: len });
        }
        chunk
    };
    let mime = mime_for(&file_name);
    let part = match len {
        // `take` keeps the body to its declared length even if the file grows meanwhile.
        Some(len) => {
            let stream = ReaderStream::with_capacity(reader.take(len), CHUNK).map(count);
            reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), len)
        }
        None => {
            let stream = ReaderStream::with_capacity(reader, CHUNK).map(count);
            reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(stream))
        }
    };
    // The MIME types above are valid constants, so this cannot fail; it is still not worth
    // a panic.
    let part = part
        .file_name(header_safe(&file_name))
        .mime_str(mime)
        .map_err(|e| ClientError::File {
            path: PathBuf::from(&file_name),
            source: std::io::Error::other(e),
        })?;
    Ok((part, file_name))
}

/// A file name as a part's `filename="…"` parameter can carry it: a control character (a
/// newline, an escape), a quote or a backslash becomes `_`. reqwest writes the parameter as
/// it is, and a newline or an escape character there makes the whole body unreadable to the
/// server (its header parser refuses them); the exact name goes in the `file_name` field.
pub(crate) fn header_safe(file_name: &str) -> String {
    file_name
        .chars()
        .map(|c| {
            if c.is_control() || c == '"' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The part's content type, from the file name; the server decides from the bytes anyway.
fn mime_for(file_name: &str) -> &'static str {
    let extension = Path::new(file_name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("mp3") => "audio/mpeg",
        Some("m4a" | "mp4" | "aac") => "audio/mp4",
        Some("ogg" | "oga" | "opus") => "audio/ogg",
        Some("webm" | "weba") => "audio/webm",
        Some("mka") => "audio/x-matroska",
        Some("flac") => "audio/flac",
        Some("wav") => "audio/wav",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::header_safe;

    #[test]
    fn file_names_are_made_safe_for_the_part_header() {
        assert_eq!(header_safe("a\nb\u{1b}[31m\"c\\d.mp3"), "a_b_[31m_c_d.mp3");
        assert_eq!(header_safe("Björk — Jóga.flac"), "Björk — Jóga.flac");
    }
}
