//! Handing freed heap memory back to the system (glibc's allocator).
//!
//! Two moments leave large freed heap areas behind at 10 000 targets: the
//! start (the configuration's parse tree, a few MB in small pieces) and a
//! `/metrics` scrape (about 21 MB of text in one buffer, and the registry's
//! families in small pieces on the blocking thread's arena). glibc keeps
//! both: the scrape buffer raises its dynamic mmap threshold, so the next
//! one comes from the heap, and small freed chunks stay in its bins. The
//! daemon fixes the mmap threshold (large buffers are mapped and unmapped)
//! and trims the heaps after start-up and after each scrape (a pass over the
//! free lists, part of the scrape's time). Measured in BENCHMARKS.md
//! ("Issue 23: windows and RSS"). With other C libraries: nothing.

/// Allocations from this size on are mapped on their own and unmapped when
/// freed (glibc's default, made fixed: no dynamic raise after a big free).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Sets the allocator up for a long-running daemon; call once at start.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; any value is
    // accepted or rejected (return 0) without undefined behaviour.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Returns the free pages of every heap to the system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free;
    // it takes the allocator's own locks.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}
