use thiserror::Error;

/// What a store operation can fail with.
///
/// `NotFound` and `Invalid` are answers about the request; `Unavailable` means the backend
/// cannot be reached right now (retrying later may work); `Full` means its disk is full
/// (retrying does not help until space is freed); `Backend` is everything else the
/// backend reported. Each backend converts its driver's errors into these, so no driver type
/// leaks past its crate.
#[derive(Debug, Clone, Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("invalid value: {0}")]
    Invalid(String),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("the chunk source failed: {0}")]
    Source(String),
    #[error("store error: {0}")]
    Backend(String),
    /// The backend's disk is full: writes fail until space is freed (deleting tracks works).
    #[error("the store's disk is full: {0}")]
    Full(String),
}

impl StoreError {
    pub fn backend(err: impl std::fmt::Display) -> Self {
        Self::Backend(err.to_string())
    }
}
