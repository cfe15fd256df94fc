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
//! stops a FerretDB of its own through `scripts/ferretdb.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

mod config;
mod conformance;
mod fault;
mod gc;
mod interop;
mod publish;
