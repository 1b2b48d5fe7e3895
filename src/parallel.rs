//! Independent pieces of work run side by side: a consolidation's runs of
//! bricks, a snapshot's bricks being encoded, a file's records being decoded.

/// Runs independent pieces of work: the core ships [`Sequential`] and
/// [`Threads`]; the Bevy plugin runs them on the async compute pool. Callers
/// cut their work into a few pieces per [`width`](Self::width) so uneven pieces
/// still balance.
pub trait Executor {
    /// About how many pieces run at once (the threads available).
    fn width(&self) -> usize;

    /// Runs `f(i)` for every `i` in `0..n`, in any order and on any of its
    /// threads, and returns the results in index order.
    fn map<R: Send + 'static>(&self, n: usize, f: &(dyn Fn(usize) -> R + Sync)) -> Vec<R>;
}

/// One piece after another, on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sequential;

impl Executor for Sequential {
    fn width(&self) -> usize {
        1
    }

    fn map<R: Send + 'static>(&self, n: usize, f: &(dyn Fn(usize) -> R + Sync)) -> Vec<R> {
        (0..n).map(f).collect()
    }
}

/// Scoped OS threads: `Threads(n)` runs the pieces on `n` threads (the calling
/// thread and `n - 1` spawned ones), each taking the next piece when it is done
/// with one.
///
/// ```
/// use bevy_delta_overlay::parallel::Threads;
/// use bevy_delta_overlay::{Aabb, BaseIndex, DeltaConfig, DeltaStorage, MaterialId};
/// use glam::IVec3;
/// let base = BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(64)), MaterialId(1))?;
/// let mut world = DeltaStorage::new(base, DeltaConfig::default());
/// world.batch_update((0..64).map(|x| (IVec3::new(x, 5, 5), MaterialId(2))));
/// let job = world.begin_consolidation(world.config().strategy).unwrap();
/// let output = job.run_on(&Threads(2));
/// world.finish_consolidation(output).unwrap();
/// # Ok::<(), bevy_delta_overlay::VoxelError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Threads(pub usize);

impl Executor for Threads {
    fn width(&self) -> usize {
        self.0.max(1)
    }

    fn map<R: Send + 'static>(&self, n: usize, f: &(dyn Fn(usize) -> R + Sync)) -> Vec<R> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let threads = self.width().min(n);
        if threads <= 1 {
            return Sequential.map(n, f);
        }
        let next = AtomicUsize::new(0);
        let work = || {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return done;
                }
                done.push((i, f(i)));
            }
        };
        let mut results: Vec<(usize, R)> = std::thread::scope(|s| {
            let spawned: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
            let mut all = work();
            for handle in spawned {
                match handle.join() {
                    Ok(done) => all.extend(done),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            all
        });
        results.sort_unstable_by_key(|r| r.0);
        results.into_iter().map(|r| r.1).collect()
    }
}
