//! Process start-up settings every long-running service shares.

/// glibc's allocator keeps up to eight arenas per core, one per thread that allocates under
/// contention, and what is freed stays in each. With the runtime's threads (and, standalone, a
/// thread per SQLite connection) a service's memory crept up batch after batch: standalone went
/// from 35 to 48 MiB over 12 batches of 5,000 requests, and stayed at 31 to 34 MiB from the
/// second batch on with `MALLOC_ARENA_MAX=2` (mimalloc and jemalloc were tried: higher, and no
/// flatter). The variable is read when the process starts, so a service started without it
/// starts itself again, once, with it set; an explicit `MALLOC_ARENA_MAX` is left alone.
///
/// Returns only if the process goes on as it is (the variable was set, or the re-exec failed).
pub fn limit_malloc_arenas() {
    if !cfg!(all(target_os = "linux", target_env = "gnu"))
        || std::env::var_os("MALLOC_ARENA_MAX").is_some()
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
            .exec();
        // exec only returns on failure: carry on with the default arenas.
        eprintln!("could not restart with MALLOC_ARENA_MAX=2 ({error}); continuing without it");
    }
}
