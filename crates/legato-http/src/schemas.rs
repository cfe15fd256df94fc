//! Shapes of request and response bodies, as the OpenAPI document describes them.

use serde::Serialize;
use utoipa::ToSchema;

/// Every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable kebab-case code to switch on, e.g. `not-found`, `not-audio`.
    pub code: String,
    /// For a person.
    pub message: String,
}

/// The seed's upload: the song as base64 in JSON (sent with or without a Content-Type).
#[derive(Serialize, ToSchema)]
pub struct SeedUpload {
    pub name: Option<String>,
    pub author: Option<String>,
    /// The audio file, base64.
    pub song_base64: String,
}

/// A multipart upload.
#[derive(Serialize, ToSchema)]
pub struct MultipartUpload {
    pub name: Option<String>,
    pub author: Option<String>,
    /// The file's name, whatever characters it holds (wins over the `song` part's
    /// `filename`); control characters are removed from what is kept.
    pub file_name: Option<String>,
    /// The audio file.
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    pub song: String,
    /// The album art of the song's folder: a JPEG, PNG or WebP image of at most 5 MiB,
    /// the track's cover unless the audio has one in its tags.
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    pub cover: Option<String>,
}

/// Fields to change.
#[derive(Serialize, ToSchema)]
pub struct TrackPatchBody {
    pub name: Option<String>,
    pub author: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Deleted {
    pub deleted: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `storage-full` when uploads are being refused for lack of disk (reads and
    /// deletes still work).
    pub status: String,
    /// Free disk in the data folder, in MB, when the server stores there.
    pub free_disk_mb: Option<u64>,
    /// The largest upload accepted (`--max-upload-mb`), in bytes: a client refuses a larger
    /// file itself, without reading or sending it.
    pub max_upload_bytes: u64,
}

/// Raw bytes (an audio file, a playlist, a segment).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(pub Vec<u8>);
