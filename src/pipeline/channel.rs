//! Bounded channels between pipeline stages. A live source must never queue stale frames, so a
//! lossy lane drops the *oldest* item when full (and counts it); a file source uses a blocking
//! lane so every frame is processed in order. Either kind reports [`Closed`] once its receiving
//! stage has gone, so a stage that ends (or fails) stops the stages feeding it.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

/// The receiving stage has gone away; the sender should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Sending half of a bounded stage-to-stage channel.
pub struct Lane<T> {
    tx: Sender<T>,
    /// A receiver clone used only to evict the oldest item of a full lossy lane. It keeps the
    /// channel connected, so the lane watches `receiver_alive` to see the real receiver go.
    evict: Option<Receiver<T>>,
    receiver_alive: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
}

/// Receiving half of a lane: a crossbeam [`Receiver`] that tells its [`Lane`] when it is dropped.
pub struct LaneReceiver<T> {
    rx: Receiver<T>,
    alive: Arc<AtomicBool>,
}

impl<T> Deref for LaneReceiver<T> {
    type Target = Receiver<T>;

    fn deref(&self) -> &Receiver<T> {
        &self.rx
    }
}

impl<T> Drop for LaneReceiver<T> {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Release);
    }
}

/// A bounded lane of `capacity` items: lossy (drop oldest when full) or blocking.
pub fn lane<T>(capacity: usize, lossy: bool) -> (Lane<T>, LaneReceiver<T>) {
    let (tx, rx) = bounded(capacity.max(1));
    let alive = Arc::new(AtomicBool::new(true));
    let lane = Lane {
        tx,
        evict: lossy.then(|| rx.clone()),
        receiver_alive: Arc::clone(&alive),
        dropped: Arc::new(AtomicU64::new(0)),
    };
    (lane, LaneReceiver { rx, alive })
}

impl<T> Lane<T> {
    /// Sends `item`: waits for room on a blocking lane; on a full lossy lane evicts the oldest
    /// queued item first. Fails once the receiving side is gone.
    pub fn send(&self, item: T) -> Result<(), Closed> {
        let Some(evict) = &self.evict else {
            return self.tx.send(item).map_err(|_| Closed);
        };
        let mut item = item;
        loop {
            if !self.receiver_alive.load(Ordering::Acquire) {
                return Err(Closed);
            }
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
        for lossy in [false, true] {
            let (tx, rx) = lane::<u8>(1, lossy);
            tx.send(0).unwrap();
            drop(rx);
            assert_eq!(tx.send(1), Err(Closed), "lossy: {lossy}");
            assert_eq!(tx.send(2), Err(Closed), "lossy: {lossy}");
        }
    }

    #[test]
    fn the_receiver_sees_the_lossy_lane_disconnect_once_the_sender_is_gone() {
        let (tx, rx) = lane::<u8>(2, true);
        tx.send(7).unwrap();
        drop(tx);
        assert_eq!(rx.recv(), Ok(7));
        assert!(rx.recv().is_err(), "no sender left: the channel is disconnected");
    }
}
