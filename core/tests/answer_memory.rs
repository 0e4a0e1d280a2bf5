//! An answer cut at `max_answer_bytes` costs at most about twice the bound in memory while its
//! call is read, recorded and journaled, so a server that never ends its answers cannot push
//! the client into swap however many calls it draws. Counted exactly: this test binary's
//! allocator keeps the live and the peak bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A move holds both blocks for a moment: counted as such.
        grew(new_size);
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            LIVE.fetch_sub(new_size, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const BOUND: usize = 4 * 1024 * 1024;

/// The peak of live bytes above the start while a one-call-at-a-time run of `calls` calls
/// against the in-process simulator, every answer endless (streamed or one JSON body), is run
/// and journaled.
fn peak_above_start(stream: bool, dir: &std::path::Path) -> usize {
    let config = format!(
        r#"suite = "builtin:rag-retail-finance"
concurrency = 1
output = "{out}"
timeout_sec = 60

[[targets]]
name = "endless"
provider = "sim"
model = "endless"
stream = {stream}
max_attempts = 1
max_answer_bytes = {BOUND}
[targets.sim]
ttft_ms = 1
itl_ms = 0
fault_endless = 1.0
"#,
        out = dir.join("out").display()
    );
    let env = |_: &str| None;
    let config =
        llmpulse_core::config::Config::parse(&config, "test.toml", dir.to_path_buf(), &env)
            .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let job = llmpulse_core::job::JobRequest {
        targets: Vec::new(),
        ..llmpulse_core::job::JobRequest::new("test".into(), dir.join("spool"), chrono::Utc::now())
    };
    let job = job.prepare(config).unwrap();
    let start = LIVE.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let mut count = llmpulse_core::sink::Count::default();
    rt.block_on(llmpulse_core::job::run_job(job, &env, &mut count))
        .unwrap();
    assert_eq!(count.records, 20);
    assert_eq!(count.successes, 0, "every answer passed the bound");
    PEAK.load(Ordering::Relaxed) - start
}

#[test]
fn an_endless_answer_costs_at_most_twice_the_bound_streamed_or_not() {
    for stream in [true, false] {
        let dir = std::env::temp_dir().join(format!(
            "llmpulse-answer-memory-{}-{stream}",
            std::process::id()
        ));
        let peak = peak_above_start(stream, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!(
            "stream = {stream}: peak {:.1} MiB above the start, {:.2}× the bound",
            peak as f64 / 1048576.0,
            peak as f64 / BOUND as f64
        );
        assert!(
            peak <= 2 * BOUND + BOUND / 4,
            "stream = {stream}: {:.2}× max_answer_bytes at the peak",
            peak as f64 / BOUND as f64
        );
    }
}
