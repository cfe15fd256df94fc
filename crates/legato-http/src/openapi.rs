//! The OpenAPI 3.1 description of both functions, generated from the handlers' annotations
//! and served at `/openapi.json`. CI checks it against the running server with schemathesis.

use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::crud::{JobView, SourceView, TrackView, VariantView};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Legato",
        description = "Serverless music streaming over HLS: the crud and streaming functions. \
                       Paths are as an OpenFaaS gateway exposes them.",
        license(name = "MIT")
    ),
    paths(
        crate::crud::list,
        crate::crud::create,
        crate::crud::show,
        crate::crud::update,
        crate::crud::delete,
        crate::crud::download,
        crate::crud::reprocess,
        crate::streaming::chunk,
        crate::healthz,
    ),
    components(schemas(TrackView, VariantView, SourceView, JobView, Binary, ErrorBody, ErrorDetail, SeedUpload, MultipartUpload, TrackPatchBody, Deleted, Health)),
    modifiers(&BearerAuth),
    tags(
        (name = "crud", description = "Add, list, show, edit, reprocess and delete tracks"),
        (name = "streaming", description = "Playlists and segments for HLS players"),
        (name = "operations", description = "Probes"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "api_key",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

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
