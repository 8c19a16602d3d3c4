//! The process's heap: giving memory freed in bulk back to the system.

/// Return the heap's free pages to the system (glibc keeps what a big list of small strings
/// freed, and threads allocate from arenas of their own, so it would not be used again soon).
/// Elsewhere than glibc: nothing.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists under its own locks; it takes
    // no pointers and leaves every live allocation in place.
    unsafe {
        libc::malloc_trim(0);
    }
}
