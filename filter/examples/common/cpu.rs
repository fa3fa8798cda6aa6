//! The CPU clock the speed examples time by (`mask_speed`, `body_phase_speed`,
//! `request_cost`): CPU seconds, so a busy machine's waits are not counted.

/// The process's CPU time in seconds: WASI's process CPU clock in wasm (Node
/// answers it from `getrusage`), `/proc/self/stat` natively.
#[cfg(target_arch = "wasm32")]
pub fn cpu_secs() -> f64 {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn clock_time_get(id: u32, precision: u64, time: *mut u64) -> u16;
    }
    const PROCESS_CPUTIME_ID: u32 = 2;
    let mut ns = 0u64;
    // SAFETY: a WASI call writing one u64 through a valid pointer.
    let errno = unsafe { clock_time_get(PROCESS_CPUTIME_ID, 1, &mut ns) };
    assert_eq!(errno, 0, "clock_time_get(process cputime)");
    ns as f64 / 1e9
}

#[cfg(not(target_arch = "wasm32"))]
pub fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let (_, rest) = stat.rsplit_once(')').expect("stat line");
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|v| v.parse::<f64>().expect("tick count"))
        .sum();
    ticks / 100.0 // USER_HZ is 100 on Linux
}
