//! Bounded channels between pipeline stages. A live source must never queue stale frames, so a
//! lossy lane drops the *oldest* item when full (and counts it); a file source uses a blocking
//! lane so every frame is processed in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

/// The receiving stage has gone away; the sender should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Sending half of a bounded stage-to-stage channel.
pub struct Lane<T> {
    tx: Sender<T>,
    /// A receiver clone used only to evict the oldest item of a full lossy lane.
    evict: Option<Receiver<T>>,
    dropped: Arc<AtomicU64>,
}

/// A bounded lane of `capacity` items: lossy (drop oldest when full) or blocking.
pub fn lane<T>(capacity: usize, lossy: bool) -> (Lane<T>, Receiver<T>) {
    let (tx, rx) = bounded(capacity.max(1));
    let lane = Lane {
        tx,
        evict: lossy.then(|| rx.clone()),
        dropped: Arc::new(AtomicU64::new(0)),
    };
    (lane, rx)
}

impl<T> Lane<T> {
    /// Sends `item`: waits for room on a blocking lane; on a full lossy lane evicts the oldest
    /// queued item first. Fails only when the receiving side is gone.
    pub fn send(&self, item: T) -> Result<(), Closed> {
        let Some(evict) = &self.evict else {
            return self.tx.send(item).map_err(|_| Closed);
        };
        let mut item = item;
        loop {
            match self.tx.try_send(item) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(back)) => {
                    if evict.try_recv().is_ok() {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    item = back;
                }
                Err(TrySendError::Disconnected(_)) => return Err(Closed),
            }
        }
    }

    /// Items evicted so far (always 0 on a blocking lane).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A shared handle on the eviction counter, readable after the lane is moved into a thread.
    pub fn drop_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossy_lane_keeps_the_newest_items_and_counts_the_rest() {
        let (tx, rx) = lane(2, true);
        for i in 0..10 {
            tx.send(i).unwrap();
        }
        assert_eq!(tx.dropped(), 8);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![8, 9]);
    }

    #[test]
    fn blocking_lane_delivers_everything_in_order() {
        let (tx, rx) = lane(1, false);
        let h = std::thread::spawn(move || {
            for i in 0..100 {
                tx.send(i).unwrap();
            }
        });
        let got: Vec<i32> = rx.iter().collect();
        h.join().unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn sending_after_the_receiver_left_is_an_error() {
        let (tx, rx) = lane::<u8>(1, false);
        drop(rx);
        assert_eq!(tx.send(1), Err(Closed));
    }
}
