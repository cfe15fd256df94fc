//! Failures as Subsonic clients read them: a code of the API's list and a message.

use legato_store::StoreError;

/// A failure as Subsonic clients read it: a code of the API's list and a message.
#[derive(Debug, Clone)]
pub struct SubsonicError {
    pub code: u16,
    pub message: String,
}

impl SubsonicError {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn generic(message: impl Into<String>) -> Self {
        Self::new(0, message)
    }

    pub fn missing(name: &str) -> Self {
        Self::new(10, format!("Required parameter is missing: {name}."))
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(70, format!("{what} not found."))
    }

    pub fn forbidden(what: &str) -> Self {
        Self::new(50, format!("User is not authorized to {what}."))
    }

    pub fn invalid(name: &str, why: &str) -> Self {
        Self::new(0, format!("Invalid parameter {name}: {why}."))
    }

    /// A listener's quota (`UserQuotas`) refuses what they asked to store. Error 0, as the
    /// API has no code for it; the message says which limit, what was asked and what to do.
    pub fn quota(message: impl Into<String>) -> Self {
        Self::new(0, message)
    }
}

impl From<StoreError> for SubsonicError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => Self::not_found(what),
            other => Self::generic(other.to_string()),
        }
    }
}
