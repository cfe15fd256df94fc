//! Path and query parameters every router reads the same way.

use legato_store::TrackId;

use crate::error::ApiError;

/// A track id from a path segment; `invalid-id` when it is not one.
pub fn parse_id(raw: &str) -> Result<TrackId, ApiError> {
    raw.parse::<TrackId>()
        .map_err(|e| ApiError::InvalidId(e.to_string()))
}
