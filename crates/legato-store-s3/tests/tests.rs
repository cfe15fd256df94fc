//! The object store against a real SeaweedFS (S3 gateway), beside real SQLite and a real
//! MongoDB-protocol server (FerretDB). `scripts/test.sh` starts both and sets
//! `LEGATO_TEST_BLOBS`, `LEGATO_TEST_BLOBS_KEYS` and `LEGATO_TEST_MONGODB_URI`.
//!
//! Every module is `#[cfg(test)]` so that clippy's `allow-unwrap-in-tests` (clippy.toml)
//! covers its helper functions too, not only its tests.

#[cfg(test)]
mod behaviour;
#[cfg(test)]
mod conformance;
#[cfg(test)]
mod fault;
#[cfg(test)]
mod util;

/// With `autotests = false` a file added to `tests/` is compiled only once it is declared
/// above: this fails until it is, so no test is left out unnoticed.
#[test]
fn every_file_in_tests_is_a_module_of_this_binary() {
    legato_test_support::suite::assert_every_file_is_a_module(
        env!("CARGO_MANIFEST_DIR"),
        include_str!("tests.rs"),
    );
}
