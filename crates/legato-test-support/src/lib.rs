//! What Legato's tests share, in one dev-only crate (`publish = false`, used only as a
//! dev-dependency): test audio made by ffmpeg ([`audio`]), a harness for the `legato`
//! binary as a real process ([`process`]), raw-socket HTTP for what a well-behaved client
//! library will not send ([`raw`]), and waits that poll for a condition with a deadline
//! instead of sleeping and hoping ([`wait`]).
//!
//! Helpers panic with a clear message on failure: they run only in tests.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod audio;
pub mod process;
pub mod raw;
pub mod wait;
