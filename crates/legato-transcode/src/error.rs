//! The one error type of this crate.

use thiserror::Error;

use crate::SourceFormat;

/// Why a file could not be transcoded or analysed.
///
/// Every variant has a stable kebab-case [`code`](TranscodeError::code) that clients can switch
/// on; the `Display` text is meant for the person who uploaded the file and names what was
/// found.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum TranscodeError {
    /// The input has no bytes at all.
    #[error("the file is empty")]
    Empty,
    /// The bytes are not audio: an image, a document, text, an archive, or nothing we know.
    /// The text says what it looks like, e.g. "looks like a PNG image".
    #[error("not an audio file: {0}")]
    NotAudio(&'static str),
    /// Audio (or a media container) we recognise but do not decode, e.g. "Ogg Speex".
    #[error("{0} is not supported yet")]
    Unsupported(String),
    /// The format was recognised but the audio in it cannot be decoded: cut short, damaged,
    /// or inconsistent.
    #[error("the {format} file is damaged or cut short: {detail}")]
    Corrupt {
        format: SourceFormat,
        detail: String,
    },
    /// A well-formed file without a single audio sample in it.
    #[error("the {0} file holds no audio")]
    NoAudio(SourceFormat),
    /// Longer than [`MAX_DURATION_SECONDS`](crate::MAX_DURATION_SECONDS).
    #[error("the audio is longer than the limit of {} minutes", .limit_seconds / 60.0)]
    TooLong { limit_seconds: f64 },
    /// More channels than [`MAX_CHANNELS`](crate::MAX_CHANNELS).
    #[error("the audio has {found} channels; at most {max} are supported")]
    TooManyChannels { found: usize, max: usize },
    /// A sample rate outside what we resample from (see
    /// [`MIN_SAMPLE_RATE`](crate::MIN_SAMPLE_RATE) and [`MAX_SAMPLE_RATE`](crate::MAX_SAMPLE_RATE)).
    #[error("a sample rate of {0} Hz is not supported")]
    UnsupportedSampleRate(u32),
    /// [`LadderOptions`](crate::LadderOptions) that cannot be honoured (a server
    /// configuration error, not the uploader's).
    #[error("invalid ladder options: {0}")]
    InvalidOptions(String),
    /// LAME refused its settings or failed while encoding (a bug or resource exhaustion, not
    /// the uploader's fault).
    #[error("the MP3 encoder failed: {0}")]
    Encoder(String),
    /// The file holding the upload could not be read (the server's disk, not the upload).
    #[error("the stored upload could not be read: {0}")]
    Io(String),
}

impl TranscodeError {
    /// A stable, kebab-case identifier of the failure, never renamed once published.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty-file",
            Self::NotAudio(_) => "not-audio",
            Self::Unsupported(_) => "unsupported-format",
            Self::Corrupt { .. } => "corrupt-audio",
            Self::NoAudio(_) => "no-audio",
            Self::TooLong { .. } => "too-long",
            Self::TooManyChannels { .. } => "too-many-channels",
            Self::UnsupportedSampleRate(_) => "unsupported-sample-rate",
            Self::InvalidOptions(_) => "invalid-options",
            Self::Encoder(_) => "encoder-failed",
            Self::Io(_) => "source-unreadable",
        }
    }

    /// Whether the input is to blame (a 4xx), as opposed to the server's configuration or
    /// the encoder ([`InvalidOptions`](Self::InvalidOptions), [`Encoder`](Self::Encoder),
    /// [`Io`](Self::Io)).
    pub fn is_input_error(&self) -> bool {
        !matches!(
            self,
            Self::InvalidOptions(_) | Self::Encoder(_) | Self::Io(_)
        )
    }

    pub(crate) fn corrupt(format: SourceFormat, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            format,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_kebab_case() {
        let all = [
            TranscodeError::Empty,
            TranscodeError::NotAudio("looks like text"),
            TranscodeError::Unsupported("Ogg Speex".into()),
            TranscodeError::corrupt(SourceFormat::Flac, "x"),
            TranscodeError::NoAudio(SourceFormat::Wav),
            TranscodeError::TooLong {
                limit_seconds: 10_800.0,
            },
            TranscodeError::TooManyChannels { found: 9, max: 8 },
            TranscodeError::UnsupportedSampleRate(1),
            TranscodeError::InvalidOptions("x".into()),
            TranscodeError::Encoder("x".into()),
            TranscodeError::Io("x".into()),
        ];
        let codes: Vec<&str> = all.iter().map(TranscodeError::code).collect();
        assert_eq!(
            codes,
            [
                "empty-file",
                "not-audio",
                "unsupported-format",
                "corrupt-audio",
                "no-audio",
                "too-long",
                "too-many-channels",
                "unsupported-sample-rate",
                "invalid-options",
                "encoder-failed",
                "source-unreadable",
            ]
        );
        for code in codes {
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        }
    }

    #[test]
    fn messages_name_what_was_found() {
        assert_eq!(
            TranscodeError::Unsupported("Ogg Speex".into()).to_string(),
            "Ogg Speex is not supported yet"
        );
        assert_eq!(
            TranscodeError::NotAudio("looks like a PNG image").to_string(),
            "not an audio file: looks like a PNG image"
        );
        assert_eq!(TranscodeError::Empty.to_string(), "the file is empty");
        assert_eq!(
            TranscodeError::TooLong {
                limit_seconds: 10_800.0
            }
            .to_string(),
            "the audio is longer than the limit of 180 minutes"
        );
    }
}
