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

/// Let every thread allocate from one heap (glibc: one arena). The overlay's threads make a node
/// per file the step looks up, and the seal on the main thread then lists every file again:
/// with an arena per thread, the nodes' memory, freed at unmount, sits at the top of the
/// overlay threads' arenas, where neither `malloc_trim` nor the main thread reaches it, and
/// the two peaks add up (about 100 bytes per file). Called before any thread exists (glibc
/// fixes the number of arenas when the first thread allocates). The
/// per-thread caches still serve most small allocations without the arena's lock; creating
/// 10,000 files measured the same either way. Elsewhere than glibc: nothing.
pub(crate) fn one_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets an allocator parameter under the allocator's own lock; no pointers.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
