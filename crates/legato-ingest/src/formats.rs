//! Source formats by name: the short names tracks record and the download's MIME types.

use legato_transcode::SourceFormat;

/// The format a track's source description names.
pub(crate) fn source_format_of(name: &str) -> Option<SourceFormat> {
    [
        SourceFormat::Mp3,
        SourceFormat::Wav,
        SourceFormat::Flac,
        SourceFormat::OggVorbis,
        SourceFormat::Mp4Aac,
        SourceFormat::Adts,
        SourceFormat::Aiff,
        SourceFormat::OggOpus,
        SourceFormat::Matroska,
    ]
    .into_iter()
    .find(|format| source_format_name(*format) == name)
}

/// The short name of a source format, as the track JSON and the download use it.
pub fn source_format_name(format: SourceFormat) -> &'static str {
    match format {
        SourceFormat::Mp3 => "mp3",
        SourceFormat::Wav => "wav",
        SourceFormat::Flac => "flac",
        SourceFormat::OggVorbis => "ogg",
        SourceFormat::Mp4Aac => "mp4",
        SourceFormat::Adts => "aac",
        SourceFormat::Aiff => "aiff",
        SourceFormat::OggOpus => "opus",
        SourceFormat::Matroska => "webm",
    }
}

/// The MIME type of a source format name.
pub fn source_content_type(format: &str) -> &'static str {
    match format {
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        "mp4" => "audio/mp4",
        "aac" => "audio/aac",
        "aiff" => "audio/aiff",
        "opus" => "audio/ogg",
        "webm" => "audio/webm",
        _ => "application/octet-stream",
    }
}
