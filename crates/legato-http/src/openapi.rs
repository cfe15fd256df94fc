//! The OpenAPI 3.1 description of both functions, generated from the handlers' annotations
//! and served at `/openapi.json`. CI checks it against the running server with schemathesis.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::crud::{JobView, SourceView, TrackView, VariantView};
use crate::schemas::{
    Binary, Deleted, ErrorBody, ErrorDetail, Health, MultipartUpload, SeedUpload, TrackPatchBody,
};

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
