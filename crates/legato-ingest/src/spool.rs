//! An upload as the pipeline takes it: its bytes in an anonymous temporary file, and what
//! the uploader said about it.

use std::io::Write;
use std::sync::Arc;

use crate::error::{IngestError, spool_error};

/// Longest name or author kept; longer text is cut.
pub const MAX_TEXT_CHARS: usize = 300;

/// An upload read off the wire: the audio, and what the uploader said about it.
#[derive(Debug)]
pub struct Upload {
    /// The file as received, in an anonymous temporary file: memory does not grow with it.
    pub audio: Spooled,
    pub name: Option<String>,
    pub author: Option<String>,
    /// The file name the client gave (multipart), used as a fallback title.
    pub file_name: Option<String>,
    /// The album art the client sent beside the audio (multipart `cover`: its folder's
    /// `cover.jpg`), already checked to be a JPEG, PNG or WebP image of at most
    /// [`MAX_COVER_BYTES`]; the track's cover unless the audio has its own.
    pub cover: Option<legato_transcode::Cover>,
}

/// Largest `cover` part accepted, as for a cover embedded in a file's tags.
pub const MAX_COVER_BYTES: usize = legato_transcode::MAX_COVER_BYTES;

/// The MIME type of a cover image, from its first bytes: JPEG, PNG or WebP.
pub fn cover_mime(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// An upload's bytes in an anonymous temporary file (gone with the last handle).
#[derive(Debug, Clone)]
pub struct Spooled {
    file: Arc<std::fs::File>,
    len: u64,
}

impl Spooled {
    pub fn new(file: std::fs::File) -> Result<Self, IngestError> {
        let len = file.metadata().map_err(spool_error)?.len();
        Ok(Self {
            file: Arc::new(file),
            len,
        })
    }

    /// The bytes held.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IngestError> {
        let mut file = temp_file()?;
        file.write_all(bytes).map_err(spool_error)?;
        Self::new(file)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads `buf.len()` bytes from `offset` (positioned reads: handles share no cursor).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset)
    }

    /// The file, for positioned reads of its own.
    pub fn file(&self) -> &std::fs::File {
        &self.file
    }

    /// The file, shared (for reading windows of it from another owner).
    pub(crate) fn shared_file(&self) -> Arc<std::fs::File> {
        self.file.clone()
    }

    /// A reader from the start, with its own position.
    pub fn reader(&self) -> SpooledReader {
        SpooledReader {
            spooled: self.clone(),
            position: 0,
        }
    }
}

/// `Read + Seek` over a [`Spooled`] upload.
pub struct SpooledReader {
    spooled: Spooled,
    position: u64,
}

impl std::io::Read for SpooledReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.spooled.file.read_at(buf, self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for SpooledReader {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            std::io::SeekFrom::Start(at) => Some(at),
            std::io::SeekFrom::End(delta) => self.spooled.len.checked_add_signed(delta),
            std::io::SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = target.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.position)
    }
}

/// An anonymous temporary file (gone with its last handle).
pub fn temp_file() -> Result<std::fs::File, IngestError> {
    tempfile::tempfile().map_err(spool_error)
}

/// Name or author as kept: control characters and noncharacters removed, whitespace
/// trimmed, length capped.
pub fn clean_text(text: &str) -> String {
    text.chars()
        .filter(|&c| !c.is_control() && !is_noncharacter(c))
        .take(MAX_TEXT_CHARS)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Unicode's noncharacters (U+FDD0 to U+FDEF, and the last two code points of every plane:
/// U+FFFE, U+FFFF, U+1FFFE, …): reserved for a program's own use, never text to interchange;
/// XML cannot carry U+FFFE and U+FFFF at all.
fn is_noncharacter(c: char) -> bool {
    let c = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&c) || c & 0xFFFE == 0xFFFE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_are_told_by_their_bytes() {
        assert_eq!(cover_mime(b"\xFF\xD8\xFF\xE0rest"), Some("image/jpeg"));
        assert_eq!(cover_mime(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(cover_mime(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(cover_mime(b"RIFF\0\0\0\0WAVEfmt "), None);
        assert_eq!(cover_mime(b"GIF89a"), None);
        assert_eq!(cover_mime(b""), None);
    }

    #[test]
    fn clean_text_strips_controls_and_caps_length() {
        assert_eq!(clean_text("  A\u{0}b\nc\u{7f} "), "Abc");
        assert_eq!(
            clean_text("x\u{FFFE}y\u{FFFF}z\u{FDD0}\u{FDEF}\u{1FFFE}\u{10FFFF}!"),
            "xyz!"
        );
        assert_eq!(
            clean_text("\u{FDCF}\u{FDF0}\u{FFFD}\u{1F600}"),
            "\u{FDCF}\u{FDF0}\u{FFFD}\u{1F600}"
        );
        assert_eq!(
            clean_text(&"x".repeat(1000)).chars().count(),
            MAX_TEXT_CHARS
        );
    }
}
