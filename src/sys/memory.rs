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

/// Blocks at least this large get pages of their own from the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const LARGE_BLOCK: libc::c_int = 4 << 20;

/// Give every block of 4 MiB or more pages of its own, for the whole run. Left to itself glibc
/// raises that threshold to the size of each such block freed (up to 32 MiB): once a growing
/// table has left its old copy behind, the next copies land in the heap, and each one left
/// behind there stays resident below the live data. Recording a million files, the peak then
/// varied from run to run between 258, 274 and 290 MiB; with the threshold fixed from the
/// start it is 258 MiB on every run. Blocks a request needs (up to 1 MiB) stay in the heap and
/// are reused. Elsewhere than glibc: nothing.
pub(crate) fn steady_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets an allocator parameter under the allocator's own lock; no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE_BLOCK);
    }
}
