//! Which connections are idle or stalled, and since when. When every connection permit is
//! taken, the longest-idle connection is asked to close to make room for a newcomer, so idle
//! connections (a leak, or a flood of them) never lock a working client out. When requests
//! wait for the shared reply budget, the connection whose replies have gone unread for the
//! longest is asked to close, so peers that do not read cannot starve those that do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Instant;

use futures::task::AtomicWaker;

/// One connection's entry, shared between its task and the registry.
pub struct Slot {
    id: u64,
    /// Milliseconds since the registry's epoch at which the connection became idle, plus
    /// one; 0 while it has work in flight.
    idle_since: AtomicU64,
    /// The same for the time since which a reply has waited for a peer that does not read
    /// it; 0 while none waits.
    stalled_since: AtomicU64,
    evict: AtomicBool,
    waker: AtomicWaker,
}

impl Slot {
    /// Whether the connection was asked to close.
    pub fn evicted(&self) -> bool {
        self.evict.load(Ordering::Acquire)
    }

    /// Wake `waker` when the connection is asked to close.
    pub fn register(&self, waker: &Waker) {
        self.waker.register(waker);
    }
}

/// Every live connection of one listener.
pub struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            slots: Mutex::default(),
        }
    }

    /// A new connection, idle from now.
    pub fn register(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            idle_since: AtomicU64::new(self.stamp(Instant::now())),
            stalled_since: AtomicU64::new(0),
            evict: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        self.lock().insert(slot.id, Arc::clone(&slot));
        slot
    }

    /// The connection is gone.
    pub fn remove(&self, slot: &Slot) {
        self.lock().remove(&slot.id);
    }

    /// Record since when the connection has had nothing in flight (`None`: it has work),
    /// and since when a reply of its has waited for the socket (`None`: none waits).
    pub fn publish(
        &self,
        slot: &Slot,
        idle_since: Option<Instant>,
        stalled_since: Option<Instant>,
    ) {
        let stamp = |at: Option<Instant>| at.map_or(0, |at| self.stamp(at));
        slot.idle_since.store(stamp(idle_since), Ordering::Release);
        slot.stalled_since
            .store(stamp(stalled_since), Ordering::Release);
    }

    /// Ask the connection idle for the longest to close. False when none is idle.
    pub fn evict_longest_idle(&self) -> bool {
        self.evict_oldest(|s| &s.idle_since, None)
    }

    /// Ask the connection whose replies have waited the longest, since before `before`, to
    /// close. False when there is none.
    pub fn evict_longest_stalled(&self, before: Instant) -> bool {
        self.evict_oldest(|s| &s.stalled_since, Some(self.stamp(before)))
    }

    /// Evict the slot with the smallest non-zero stamp `field`, at most `limit`.
    fn evict_oldest(&self, field: impl Fn(&Slot) -> &AtomicU64, limit: Option<u64>) -> bool {
        let slots = self.lock();
        let victim = slots
            .values()
            .filter(|s| !s.evicted())
            .filter_map(|s| match field(s).load(Ordering::Acquire) {
                0 => None,
                since => Some((since, s)),
            })
            .filter(|(since, _)| limit.is_none_or(|limit| *since <= limit))
            .min_by_key(|(since, _)| *since);
        match victim {
            Some((_, slot)) => {
                slot.evict.store(true, Ordering::Release);
                slot.waker.wake();
                true
            }
            None => false,
        }
    }

    fn stamp(&self, at: Instant) -> u64 {
        let millis = at.saturating_duration_since(self.epoch).as_millis();
        u64::try_from(millis).unwrap_or(u64::MAX - 1) + 1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_longest_idle_connection_is_evicted_and_busy_ones_never() {
        let registry = Registry::new();
        let now = Instant::now();
        let busy = registry.register();
        let recent = registry.register();
        let old = registry.register();
        registry.publish(&busy, None, None);
        registry.publish(&recent, Some(now + Duration::from_secs(5)), None);
        registry.publish(&old, Some(now + Duration::from_secs(1)), None);
        assert!(registry.evict_longest_idle());
        assert!(old.evicted() && !recent.evicted() && !busy.evicted());
        assert!(registry.evict_longest_idle());
        assert!(recent.evicted() && !busy.evicted());
        // Only the busy one is left: nothing to evict.
        assert!(!registry.evict_longest_idle());
        registry.remove(&old);
        registry.remove(&recent);
        registry.publish(&busy, Some(now), None);
        assert!(registry.evict_longest_idle());
    }

    #[test]
    fn the_connection_stalled_the_longest_is_evicted_once_stalled_long_enough() {
        let registry = Registry::new();
        // Stamps count from the registry's creation: stay after it.
        let now = Instant::now() + Duration::from_secs(10);
        let reader = registry.register();
        let hog = registry.register();
        let newer_hog = registry.register();
        registry.publish(&reader, None, None);
        registry.publish(&hog, None, Some(now));
        registry.publish(&newer_hog, None, Some(now + Duration::from_secs(2)));
        // Nobody has been stalled since before `now - 1 s`.
        assert!(!registry.evict_longest_stalled(now - Duration::from_secs(1)));
        assert!(registry.evict_longest_stalled(now + Duration::from_secs(3)));
        assert!(hog.evicted() && !newer_hog.evicted() && !reader.evicted());
        assert!(registry.evict_longest_stalled(now + Duration::from_secs(3)));
        assert!(newer_hog.evicted() && !reader.evicted());
        assert!(!registry.evict_longest_stalled(now + Duration::from_secs(3)));
    }
}
