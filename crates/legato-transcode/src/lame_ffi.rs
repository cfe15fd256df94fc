//! The one LAME setting that mp3lame-encoder does not expose, set through its raw bindings.
//!
//! The bit reservoir lets a frame borrow bits from the frames before it: its audio data then
//! starts inside an earlier frame (`main_data_begin` > 0). A player that starts at a
//! segment boundary, or seeks to one, does not have that earlier frame and decodes garbage
//! or silence until the borrowing ends. HLS rungs therefore disable it, which costs a little
//! quality at a given bitrate and makes every frame decodable on its own.
#![allow(
    unsafe_code,
    reason = "mp3lame-encoder has no safe setter for the bit reservoir; this is one FFI call"
)]

use mp3lame_encoder::{Builder, ffi};

/// Turns LAME's bit reservoir off (`lame_set_disable_reservoir(gfp, 1)`) before `build`.
///
/// Returns LAME's status code when it refuses (only for an invalid handle).
pub(crate) fn disable_bit_reservoir(builder: &mut Builder) -> Result<(), i32> {
    // SAFETY: `Builder::as_ptr` returns the non-null `lame_global_flags` that `builder` got
    // from `lame_init` and owns until it is dropped or consumed by `build`; we hold it by
    // `&mut` for the whole call, so nothing else touches it, and the pointer is not kept.
    // `lame_set_disable_reservoir` only validates the handle and its 0/1 argument and stores
    // one `int` in that struct.
    let status = unsafe { ffi::lame_set_disable_reservoir(builder.as_ptr(), 1) };
    if status == 0 { Ok(()) } else { Err(status) }
}
