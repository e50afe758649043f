//! Process start-up settings every long-running service shares.

/// glibc's allocator settings for a long-running service, which glibc reads only at start:
/// - `MALLOC_ARENA_MAX=2`: glibc keeps up to eight arenas per core, one per thread that
///   allocates under contention, and what is freed stays in each. With the runtime's threads
///   (and, standalone, a thread per SQLite connection) a service's memory crept up batch after
///   batch: standalone went from 35 to 48 MiB over 12 batches of 5,000 requests, and stayed at
///   31 to 34 MiB from the second batch on with two arenas (mimalloc and jemalloc were tried:
///   higher, and no flatter).
/// - `MALLOC_MMAP_THRESHOLD_=131072`: blocks of 128 KiB and more (1 MiB file parts, pages of
///   results) are mapped and unmapped, never kept in the heap. By default glibc raises this
///   threshold each time such a block is freed, after which they fragment the heap: over 8
///   batches the gateway went 20.6 → 31.1 MiB with two arenas alone, 16.9 → 21.9 MiB with both.
///
/// A service started without them starts itself again, once (same pid), with them set; a
/// service started with either set explicitly is left alone. Returns only if the process goes
/// on as it is.
pub fn limit_malloc_arenas() {
    if !cfg!(all(target_os = "linux", target_env = "gnu"))
        || std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some()
    {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let Ok(exe) = std::env::current_exe() else { return };
        let error = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("MALLOC_ARENA_MAX", "2")
            .env("MALLOC_MMAP_THRESHOLD_", "131072")
            .exec();
        // exec only returns on failure: carry on with the default arenas.
        eprintln!("could not restart with glibc's malloc settings ({error}); continuing without");
    }
}
