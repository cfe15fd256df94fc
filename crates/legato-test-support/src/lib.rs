//! What Legato's tests share, in one dev-only crate (`publish = false`, used only as a
//! dev-dependency): test audio made by ffmpeg ([`audio`]), ffmpeg as an independent player ([`ffmpeg`]), a harness for the `legato`
//! binary as a real process ([`process`]), raw-socket HTTP for what a well-behaved client
//! library will not send ([`raw`]), and waits that poll for a condition with a deadline
//! instead of sleeping and hoping ([`wait`]), folders kept for a process's life and swept
//! by the next runs ([`scratch`]), and the servers the store tests run against:
//! FerretDB ([`ferretdb`]) and SeaweedFS ([`seaweedfs`]).
//!
//! Helpers panic with a clear message on failure: they run only in tests.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure panics with its message, which fails the test"
)]

pub mod audio;
pub mod docs;
pub mod ferretdb;
pub mod ffmpeg;
pub mod process;
pub mod raw;
pub mod scratch;
mod scripts;
pub mod seaweedfs;
pub mod suite;
pub mod wait;
