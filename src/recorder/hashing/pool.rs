//! The recorder's worker threads, in two shapes: [`map`] (and [`each_mut`], in place) runs a
//! job over a slice on scoped threads and returns when all of it is done (listing, hashing
//! products, hashing kept materials); [`spawn`] starts totofs's own background threads that serve the overlay while
//! the step runs (their requests through the overlay are not the step's).

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// `n` threads, or one per core for 0.
pub(crate) fn threads(n: usize) -> usize {
    if n == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    } else {
        n
    }
}

/// `f` over every item on `threads` threads (0: one per core), each claiming `block`
/// consecutive items at a time and keeping its own state from `init` (a cache that works best
/// on neighbouring items). The results are in the items' order; on an error the threads stop
/// and an error is returned.
pub(crate) fn map<T, R, S>(
    items: &[T],
    threads: usize,
    block: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &T) -> Result<R> + Sync,
) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
{
    let block = block.max(1);
    let workers = self::threads(threads).min(items.len().div_ceil(block)).max(1);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    // Each thread's finished blocks: (first index, results).
    type Blocks<R> = Vec<(usize, Vec<R>)>;
    let work = || -> Result<Blocks<R>> {
        let mut state = init();
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let start = next.fetch_add(block, Ordering::Relaxed);
            let Some(part) = items.get(start..items.len().min(start.saturating_add(block))) else { break };
            if part.is_empty() {
                break;
            }
            let mut out = Vec::with_capacity(part.len());
            for it in part {
                match f(&mut state, it) {
                    Ok(r) => out.push(r),
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
            done.push((start, out));
        }
        Ok(done)
    };
    let parts: Vec<Result<Blocks<R>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers).map(|_| s.spawn(work)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::Record("a worker thread panicked".into()))))
            .collect()
    });
    let mut blocks = Vec::new();
    for p in parts {
        blocks.extend(p?);
    }
    blocks.sort_unstable_by_key(|(start, _)| *start);
    let mut out = Vec::with_capacity(items.len());
    for (_, b) in blocks {
        out.extend(b);
    }
    Ok(out)
}

/// `f` over every item in place on `threads` threads (0: one per core), each taking `block`
/// consecutive items at a time with its own state from `init`. What `f` returns for an item
/// (rarely anything) is collected with the item's index, in index order; on an error the
/// threads stop and an error is returned.
pub(crate) fn each_mut<T, R, S>(
    items: &mut [T],
    threads: usize,
    block: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &mut T) -> Result<Option<R>> + Sync,
) -> Result<Vec<(usize, R)>>
where
    T: Send,
    R: Send,
{
    let block = block.max(1);
    let workers = self::threads(threads).min(items.len().div_ceil(block)).max(1);
    let failed = AtomicBool::new(false);
    // The blocks, handed out in order to whichever thread asks next.
    let blocks = std::sync::Mutex::new(items.chunks_mut(block).enumerate());
    let work = || -> Result<Vec<(usize, R)>> {
        let mut state = init();
        let mut out = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let next = match blocks.lock() {
                Ok(mut it) => it.next(),
                Err(_) => None,
            };
            let Some((b, part)) = next else { break };
            for (k, it) in part.iter_mut().enumerate() {
                match f(&mut state, it) {
                    Ok(Some(r)) => out.push((b * block + k, r)),
                    Ok(None) => {}
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
        }
        Ok(out)
    };
    let parts: Vec<Result<Vec<(usize, R)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers).map(|_| s.spawn(work)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::Record("a worker thread panicked".into()))))
            .collect()
    });
    let mut out = Vec::new();
    for p in parts {
        out.extend(p?);
    }
    out.sort_unstable_by_key(|(i, _)| *i);
    Ok(out)
}

/// Start `threads` (at least one) of totofs's own background threads, each running `work()`.
pub(crate) fn spawn<F>(threads: usize, work: impl Fn() -> F) -> Vec<std::thread::JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    (0..threads.max(1))
        .map(|_| {
            let job = work();
            std::thread::spawn(move || {
                crate::recorder::tracking::register_own_thread();
                job();
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_and_an_error_wins() {
        let items: Vec<u32> = (0..1000).collect();
        for (threads, block) in [(1, 1), (3, 7), (0, 1024)] {
            let got = map(&items, threads, block, || 0u32, |seen, &i| {
                *seen += 1;
                Ok(i * 2)
            })
            .unwrap();
            assert_eq!(got, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
        let r = map(&items, 2, 3, || (), |_, &i| if i == 500 { Err(Error::Record("bad".into())) } else { Ok(i) });
        assert!(r.is_err());
        assert!(map(&[] as &[u8], 0, 1, || (), |_, &b| Ok(b)).unwrap().is_empty());
    }

    #[test]
    fn each_mut_changes_every_item_and_returns_the_few_results_in_order() {
        for (threads, block) in [(1, 1), (3, 7), (0, 1024)] {
            let mut items: Vec<u32> = (0..1000).collect();
            let got = each_mut(&mut items, threads, block, || (), |_, i| {
                *i *= 2;
                Ok((*i % 300 == 0).then_some(*i))
            })
            .unwrap();
            assert_eq!(items, (0..1000).map(|i| i * 2).collect::<Vec<_>>());
            assert_eq!(got, [(0, 0), (150, 300), (300, 600), (450, 900), (600, 1200), (750, 1500), (900, 1800)]);
        }
        let mut items: Vec<u32> = (0..1000).collect();
        let r = each_mut(&mut items, 2, 3, || (), |_, i| if *i == 500 { Err(Error::Record("bad".into())) } else { Ok(None::<()>) });
        assert!(r.is_err());
        assert!(each_mut(&mut [] as &mut [u8], 0, 1, || (), |_, _| Ok(None::<()>)).unwrap().is_empty());
    }
}
