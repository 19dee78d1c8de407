//! Ordered parallel map: the one place rulecast spreads work across cores.
//!
//! Input: a slice and a function. Output: the function's results in the slice's order, whatever
//! the number of threads, so that everything downstream (diagnostics, duplicate checks, output
//! files) is byte-for-byte the same as a sequential run. Threads take small batches of indexes
//! from a shared counter (rules differ a lot in cost), on `std::thread::scope`.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many items a thread takes at once.
const BATCH: usize = 8;

/// The number of threads used: `RULECAST_THREADS` when set to a positive number, else the
/// cores available. Read once per process (finding the cores reads the cgroup's CPU quota
/// files, and a build asks once per batch).
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::env::var("RULECAST_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
    })
}

/// `items.iter().map(f).collect()`, computed on up to [`threads`] threads, in order.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let n = threads().min(items.len().div_ceil(BATCH));
    if n <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let parts: Vec<Vec<(usize, R)>> = std::thread::scope(|s| {
        let work = || {
            let mut done = vec![];
            loop {
                let start = next.fetch_add(BATCH, Ordering::Relaxed);
                if start >= items.len() {
                    break done;
                }
                let end = (start + BATCH).min(items.len());
                done.extend((start..end).map(|i| (i, f(&items[i]))));
            }
        };
        let handles: Vec<_> = (1..n).map(|_| s.spawn(work)).collect();
        let mut parts = vec![work()];
        for h in handles {
            match h.join() {
                Ok(p) => parts.push(p),
                // a panic in `f` is a bug: let it surface as it would have sequentially
                Err(e) => std::panic::resume_unwind(e),
            }
        }
        parts
    });
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    for (i, r) in parts.into_iter().flatten() {
        slots[i] = Some(r);
    }
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_the_input_order() {
        let items: Vec<usize> = (0..1000).collect();
        let out = super::map(&items, |i| i * 2);
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(super::map(&[] as &[u8], |x| *x).is_empty());
    }
}
