//! Failed-key throttling: at most N new wrong guesses per minute per client address and per
//! claimed project (a GCRA "leaky bucket" per key, in a bounded cache), so guessing stays slow.

use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use moka::sync::Cache;

/// Counts failures per key and says when a key has used up its allowance.
///
/// GCRA: each failure pushes the key's "theoretical arrival time" (TAT) one interval
/// (a minute / N) further; a key whose next failure would put the TAT more than a minute
/// ahead of now is blocked until it drains. N failures at once are allowed, then one every
/// interval: the same budget as a fixed window, without the double burst at window edges,
/// and one `Instant` per key.
pub struct FailureLimiter<K> {
    interval: Duration,
    burst: Duration,
    tats: Cache<K, Instant>,
}

/// Keys are forgotten this long after their last failure: by then their TAT lies in the past,
/// which is the same as no entry.
const FORGET_AFTER: Duration = Duration::from_secs(120);

impl<K: Hash + Eq + Send + Sync + Clone + 'static> FailureLimiter<K> {
    /// `None` when `per_minute` is 0 (throttling off). `capacity` bounds the keys remembered:
    /// an attacker inventing addresses or project ids can only evict entries, never grow memory.
    pub fn new(per_minute: u32, capacity: u64) -> Option<Self> {
        if per_minute == 0 {
            return None;
        }
        let burst = Duration::from_secs(60);
        Some(Self {
            interval: burst / per_minute,
            burst,
            tats: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(FORGET_AFTER)
                .build(),
        })
    }

    /// How long `key` must wait before another attempt may be verified, if it is blocked now.
    pub fn blocked(&self, key: &K) -> Option<Duration> {
        let now = Instant::now();
        let tat = self.tats.get(key)?;
        let next = tat.max(now) + self.interval;
        let limit = now + self.burst;
        (next > limit).then(|| next - limit)
    }

    /// Records one failed attempt for `key`.
    pub fn record(&self, key: K) {
        let now = Instant::now();
        let interval = self.interval;
        self.tats
            .entry(key)
            .and_upsert_with(|old| old.map_or(now, |e| (*e.value()).max(now)) + interval);
    }
}

/// The part of a client address one party plausibly controls: the IPv4 address, or the IPv6
/// /64 (one subscriber usually gets a whole /64, so counting single IPv6 addresses would let
/// one client rotate through billions of them).
pub fn client_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_n_failures_then_blocks_for_about_one_interval() {
        let limiter = FailureLimiter::new(3, 100).unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.blocked(&"a"), None);
            limiter.record("a");
        }
        let wait = limiter.blocked(&"a").expect("blocked after 3 failures");
        assert!(wait <= Duration::from_secs(20), "{wait:?}");
        assert!(wait > Duration::from_secs(19), "{wait:?}");
        assert_eq!(limiter.blocked(&"b"), None, "keys are counted apart");
    }

    #[test]
    fn zero_per_minute_turns_throttling_off() {
        assert!(FailureLimiter::<u8>::new(0, 10).is_none());
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(client_key(mapped), "10.0.0.7".parse::<IpAddr>().unwrap());
    }
}
