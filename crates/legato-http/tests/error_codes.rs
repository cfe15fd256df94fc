//! Every error code in the error map is documented in docs/api.md, so that a client author
//! can switch on any code the server sends.
#![allow(clippy::unwrap_used)]

/// The string literals that `ApiError::code` returns, read from the source of the map.
fn codes_in_error_map() -> Vec<String> {
    let source = include_str!("../src/error.rs");
    let start = source.find("pub fn code(&self)").unwrap();
    let body = &source[start..];
    let end = body.find("\n    }\n").unwrap();
    body[..end]
        .split("=> \"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

#[test]
fn every_code_in_the_error_map_is_in_the_api_document() {
    let docs = include_str!("../../../docs/api.md");
    let codes = codes_in_error_map();
    assert!(codes.len() > 15, "the map was not read: {codes:?}");
    let missing: Vec<&String> = codes
        .iter()
        .filter(|code| !docs.contains(&format!("`{code}`")))
        .collect();
    assert!(missing.is_empty(), "not in docs/api.md: {missing:?}");
}
