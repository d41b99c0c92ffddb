//! Fair admission to a fixed number of slots (bulk threads, job workers) shared by projects:
//! a free slot goes to the waiting project with the fewest slots in use, so one project's
//! backlog delays another project's work by at most the slots already running.
//!
//! Waiting is a future: dropping it (a client that went away) leaves the queue, and its work
//! never runs.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

pub struct FairSlots {
    state: Mutex<Slots>,
}

struct Slots {
    free: usize,
    /// Slots in use per owner.
    running: HashMap<String, usize>,
    /// Waiters per owner, oldest first.
    waiting: HashMap<String, VecDeque<oneshot::Sender<()>>>,
    /// Owners with waiters, in the order they last started waiting or were served.
    turn: VecDeque<String>,
}

/// A slot in use; dropping it hands the slot to the next waiter.
pub struct Slot {
    slots: Arc<FairSlots>,
    owner: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.release(&self.owner);
    }
}

/// A waiter's end. Dropped while waiting, it leaves the queue; dropped just after a slot was
/// handed to it, it passes the slot on.
struct Waiter {
    rx: Option<oneshot::Receiver<()>>,
    slots: Arc<FairSlots>,
    owner: String,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.slots.release(&self.owner);
            }
        }
    }
}

impl Slots {
    /// Hands one slot to the next live waiter, or back to the free pool.
    fn hand_on(&mut self) {
        loop {
            let next = self
                .turn
                .iter()
                .enumerate()
                .min_by_key(|(i, o)| (self.running.get(*o).copied().unwrap_or(0), *i))
                .map(|(i, _)| i);
            let Some(owner) = next.and_then(|at| self.turn.remove(at)) else {
                self.free += 1;
                return;
            };
            let queue = self.waiting.get_mut(&owner);
            let tx = queue.and_then(VecDeque::pop_front);
            if self.waiting.get(&owner).is_some_and(|q| !q.is_empty()) {
                self.turn.push_back(owner.clone());
            } else {
                self.waiting.remove(&owner);
            }
            // A waiter that has gone away refuses the slot; try the next one.
            if tx.is_some_and(|tx| tx.send(()).is_ok()) {
                *self.running.entry(owner).or_default() += 1;
                return;
            }
        }
    }
}

impl FairSlots {
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(Slots {
                free: slots.max(1),
                running: HashMap::new(),
                waiting: HashMap::new(),
                turn: VecDeque::new(),
            }),
        })
    }

    /// Waits for a slot for work of `owner` (a project).
    pub async fn acquire(self: &Arc<Self>, owner: &str) -> Slot {
        let rx = {
            let mut s = self.state.lock();
            // Free slots exist only while nobody live waits: a release hands its slot on.
            if s.free > 0 {
                s.free -= 1;
                *s.running.entry(owner.to_string()).or_default() += 1;
                return self.slot(owner);
            }
            let (tx, rx) = oneshot::channel();
            let queue = s.waiting.entry(owner.to_string()).or_default();
            queue.push_back(tx);
            if queue.len() == 1 {
                s.turn.push_back(owner.to_string());
            }
            rx
        };
        let mut waiter = Waiter {
            rx: Some(rx),
            slots: self.clone(),
            owner: owner.to_string(),
        };
        if let Some(rx) = waiter.rx.as_mut() {
            // The sender lives in our queue until it is used, so this only ends with a slot.
            let _ = rx.await;
        }
        waiter.rx = None;
        self.slot(owner)
    }

    fn slot(self: &Arc<Self>, owner: &str) -> Slot {
        Slot {
            slots: self.clone(),
            owner: owner.to_string(),
        }
    }

    /// Gives back a slot of `owner`: to the waiting owner with the fewest slots in use (the
    /// longest-waiting among equals), or to the free pool. The slot being given back still
    /// counts for `owner` while choosing, so an owner that just had its turn waits for the
    /// others' (with one slot: strict alternation between the projects waiting).
    fn release(&self, owner: &str) {
        let mut s = self.state.lock();
        s.hand_on();
        if let Some(n) = s.running.get_mut(owner) {
            *n -= 1;
            if *n == 0 {
                s.running.remove(owner);
            }
        }
    }

    /// Waiters queued now (including ones that went away and were not yet skipped).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.state.lock().waiting.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn another_owner_is_served_before_a_backlog() {
        let slots = FairSlots::new(1);
        let first = slots.acquire("a").await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (slots, order) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire("a").await;
                order.lock().push(format!("a{i}"));
            }));
            tokio::task::yield_now().await;
        }
        while slots.waiting() < 5 {
            tokio::task::yield_now().await;
        }
        let (s, o) = (slots.clone(), order.clone());
        let b = tokio::spawn(async move {
            let _slot = s.acquire("b").await;
            o.lock().push("b".to_string());
        });
        while slots.waiting() < 6 {
            tokio::task::yield_now().await;
        }
        drop(first);
        b.await.unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(order.lock()[0], "b", "{:?}", order.lock());
    }

    #[tokio::test]
    async fn a_waiter_that_goes_away_never_runs_and_frees_nothing_twice() {
        let slots = FairSlots::new(1);
        let held = slots.acquire("a").await;
        let gone = tokio::time::timeout(Duration::from_millis(20), slots.acquire("a")).await;
        assert!(gone.is_err());
        drop(held);
        // The one slot is free again: exactly one acquire succeeds at once.
        let one = slots.acquire("b").await;
        let two = tokio::time::timeout(Duration::from_millis(20), slots.acquire("c")).await;
        assert!(two.is_err());
        drop(one);
        assert_eq!(slots.state.lock().free, 1);
    }
}
