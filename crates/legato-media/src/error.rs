//! The one error type of this crate.

use thiserror::Error;

/// Why a file could not be packaged.
///
/// Every variant has a stable kebab-case [`code`](MediaError::code) that clients can switch on;
/// the `Display` text is meant for the person who uploaded the file.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The input has no bytes at all.
    #[error("the file is empty: upload an MP3 file with audio in it")]
    Empty,
    /// No run of valid MPEG audio frames was found.
    #[error("not an MP3 file: no MPEG audio frames found")]
    NotMpegAudio,
    /// MPEG audio was recognised, but not one complete audio frame is there: the file is cut
    /// short, or holds only a Xing/Info/VBRI header.
    #[error("the MP3 file is too short: it does not hold one complete audio frame")]
    TooShort,
    /// [`SegmentOptions::target_seconds`](crate::SegmentOptions) is not a finite number above 0.
    #[error("the segment target duration must be a finite number of seconds above 0, not {0}")]
    InvalidSegmentTarget(f64),
    /// No `fLaC` marker followed by a STREAMINFO block.
    #[error("not a FLAC file: no fLaC marker and STREAMINFO block found")]
    NotFlac,
    /// A FLAC frame header is missing or a frame fails its CRC at this byte offset, or the
    /// frames do not add up to the stream's declared length.
    #[error("the FLAC file is damaged at byte {offset}: a frame is missing or fails its checksum")]
    CorruptFlac { offset: u64 },
    /// What was given to the fMP4 packager cannot be described in an MP4 track (a sample rate
    /// of 0, no samples, a codec configuration too large...).
    #[error("the audio cannot be packaged as fragmented MP4: {0}")]
    UnpackableTrack(&'static str),
}

impl MediaError {
    /// A stable, kebab-case identifier of the failure, never renamed once published.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty-file",
            Self::NotMpegAudio => "not-audio",
            Self::TooShort => "too-short",
            Self::InvalidSegmentTarget(_) => "invalid-segment-target",
            Self::NotFlac => "not-audio",
            Self::CorruptFlac { .. } => "corrupt-audio",
            Self::UnpackableTrack(_) => "unpackable-track",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_kebab_case() {
        let all = [
            MediaError::Empty,
            MediaError::NotMpegAudio,
            MediaError::TooShort,
            MediaError::InvalidSegmentTarget(0.0),
            MediaError::NotFlac,
            MediaError::CorruptFlac { offset: 0 },
            MediaError::UnpackableTrack("x"),
        ];
        let codes: Vec<&str> = all.iter().map(MediaError::code).collect();
        assert_eq!(
            codes,
            [
                "empty-file",
                "not-audio",
                "too-short",
                "invalid-segment-target",
                "not-audio",
                "corrupt-audio",
                "unpackable-track",
            ]
        );
        for code in codes {
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        }
    }

    #[test]
    fn not_audio_message_is_the_documented_one() {
        assert_eq!(
            MediaError::NotMpegAudio.to_string(),
            "not an MP3 file: no MPEG audio frames found"
        );
    }
}
