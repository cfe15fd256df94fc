//! Integration tests of the MongoDB store against a real MongoDB-protocol server.
//!
//! Start one (FerretDB on SQLite will do) and name it in `LEGATO_TEST_MONGODB_URI`:
//!
//! ```text
//! scripts/ferretdb.sh start 27017 /tmp/legato-ferretdb
//! LEGATO_TEST_MONGODB_URI=mongodb://127.0.0.1:27017/ cargo test -p legato-store-mongo
//! ```
//!
//! Every test uses a database of its own, so they run in parallel. The fault test starts and
//! stops a FerretDB of its own (legato-test-support's `ferretdb`).
//!
//! Every module is `#[cfg(test)]` so that clippy's `allow-unwrap-in-tests` (clippy.toml)
//! covers its helper functions too, not only its tests.

#[cfg(test)]
mod util;

#[cfg(test)]
mod claims;
#[cfg(test)]
mod config;
#[cfg(test)]
mod conformance;
#[cfg(test)]
mod fault;
#[cfg(test)]
mod gc;
#[cfg(test)]
mod interop;
#[cfg(test)]
mod publish;
#[cfg(test)]
mod query_shape;

/// With `autotests = false` a file added to `tests/` is compiled only once it is declared
/// above: this fails until it is, so no test is left out unnoticed.
#[test]
fn every_file_in_tests_is_a_module_of_this_binary() {
    legato_test_support::suite::assert_every_file_is_a_module(
        env!("CARGO_MANIFEST_DIR"),
        include_str!("tests.rs"),
    );
}
