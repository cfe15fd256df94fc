//! Large transient buffers go back to the system when they are freed.
//!
//! glibc serves an allocation above its mmap threshold (128 KiB at first) from a mapping of
//! its own, unmapped on free; but each time such a block is freed it raises the threshold
//! to that block's size (up to 32 MiB). After the first 8 MiB source piece, pieces and
//! large segments come from the heap arenas instead (one arena per thread that allocated),
//! and a freed one stays resident there. A process receiving a long upload then kept the
//! high-water mark of every blocking thread: 65 MB of anonymous memory on this machine,
//! 113 MB on a busier CI runner, against ~30 MB with the threshold fixed. Fixing it (which
//! also turns the raising off) keeps the memory a long upload costs bounded and returned.
#![allow(
    unsafe_code,
    reason = "glibc's mallopt has no safe wrapper; this is one FFI call taking no pointer"
)]

/// Blocks of at least this size are mapped on their own and unmapped when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: libc::c_int = 1 << 20;

/// Sets the allocator up as described above; call in `main` before any thread starts. Elsewhere than on
/// glibc it does nothing (musl and others do not raise a threshold).
pub fn return_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only sets a parameter of glibc's allocator, under the
        // allocator's own lock; it takes no pointer and cannot invalidate any allocation.
        let accepted = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) };
        if accepted != 1 {
            tracing::warn!("glibc refused a fixed mmap threshold; large buffers may stay resident");
        }
    }
}
