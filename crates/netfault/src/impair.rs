//! What happens to one packet on an impaired path: deterministic, given the time and the
//! path's state, so it is tested without sockets.

use std::time::{Duration, Instant};

/// One direction of a path.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairment {
    /// Share of packets lost at random, 0.0–1.0 (independent losses, as nftables' numgen).
    pub loss: f64,
    /// One-way delay added to every packet.
    pub delay: Duration,
    /// Each packet's delay is `delay` ± up to `jitter` (uniform), so packets reorder, as
    /// netem's jitter without a rate does.
    pub jitter: Duration,
    /// A rate cap in kbit/s (a token bucket with a queue of `QUEUE_LIMIT`, like tbf):
    /// packets beyond it wait, and are dropped once the queue is full.
    pub rate_kbps: Option<u32>,
}

/// The longest a packet waits for the rate cap before it is dropped (tbf's `latency`).
pub const QUEUE_LIMIT: Duration = Duration::from_millis(100);

impl Impairment {
    pub const NONE: Self = Self {
        loss: 0.0,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        rate_kbps: None,
    };

    pub fn loss(share: f64) -> Self {
        Self {
            loss: share,
            ..Self::NONE
        }
    }

    pub fn is_none(&self) -> bool {
        *self == Self::NONE
    }
}

/// Both directions between one client and the server.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Link {
    /// Client → server.
    pub up: Impairment,
    /// Server → client.
    pub down: Impairment,
}

impl Link {
    pub const CLEAN: Self = Self {
        up: Impairment::NONE,
        down: Impairment::NONE,
    };

    /// The same impairment both ways.
    pub fn both(each: Impairment) -> Self {
        Self {
            up: each,
            down: each,
        }
    }
}

/// What became of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Send it at this time.
    Deliver(Instant),
    Lost,
    /// The rate cap's queue was full.
    Overflowed,
}

/// One direction of one client's path: the rate cap's clock.
#[derive(Debug, Default)]
pub struct Direction {
    /// When the cap's link is free again.
    busy_until: Option<Instant>,
}

impl Direction {
    /// The fate of a packet of `bytes` arriving at `now`; `random` gives uniform numbers
    /// in [0, 1).
    pub fn admit(
        &mut self,
        impairment: &Impairment,
        bytes: usize,
        now: Instant,
        random: &mut Random,
    ) -> Fate {
        if impairment.loss > 0.0 && random.uniform() < impairment.loss {
            return Fate::Lost;
        }
        let mut leaves = now;
        if let Some(kbps) = impairment.rate_kbps.filter(|k| *k > 0) {
            let start = self.busy_until.filter(|b| *b > now).unwrap_or(now);
            if start.duration_since(now) > QUEUE_LIMIT {
                return Fate::Overflowed;
            }
            // bits / (kbit/s) = ms; in µs to keep small packets' time.
            let on_wire = Duration::from_micros(bytes as u64 * 8 * 1000 / u64::from(kbps));
            self.busy_until = Some(start + on_wire);
            leaves = start + on_wire;
        }
        let mut delay = impairment.delay;
        if !impairment.jitter.is_zero() {
            let spread = impairment.jitter.as_secs_f64() * (2.0 * random.uniform() - 1.0);
            delay = Duration::from_secs_f64((delay.as_secs_f64() + spread).max(0.0));
        }
        Fate::Deliver(leaves + delay)
    }
}

/// xorshift64*: reproducible runs without a dependency.
#[derive(Debug)]
pub struct Random(u64);

impl Random {
    pub fn seeded(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_drops_about_its_share() {
        let (mut path, mut random, now) = (Direction::default(), Random::seeded(7), Instant::now());
        let lossy = Impairment::loss(0.1);
        let lost = (0..10_000)
            .filter(|_| path.admit(&lossy, 100, now, &mut random) == Fate::Lost)
            .count();
        assert!((900..1100).contains(&lost), "{lost} of 10,000 lost at 10 %");
    }

    #[test]
    fn a_rate_cap_spaces_packets_then_overflows_its_queue() {
        let (mut path, mut random, now) = (Direction::default(), Random::seeded(1), Instant::now());
        let capped = Impairment {
            rate_kbps: Some(500),
            ..Impairment::NONE
        };
        // 1,250 bytes = 10,000 bits = 20 ms at 500 kbit/s.
        let fates: Vec<_> = (0..8)
            .map(|_| path.admit(&capped, 1250, now, &mut random))
            .collect();
        for (i, fate) in fates.iter().take(6).enumerate() {
            assert_eq!(
                *fate,
                Fate::Deliver(now + Duration::from_millis(20 * (i as u64 + 1)))
            );
        }
        assert_eq!(fates[6], Fate::Overflowed, "120 ms queued > 100 ms");
        // Once the queue drained, packets flow again.
        let later = now + Duration::from_millis(200);
        assert_eq!(
            path.admit(&capped, 1250, later, &mut random),
            Fate::Deliver(later + Duration::from_millis(20))
        );
    }

    #[test]
    fn jitter_spreads_delays_around_the_base_and_never_below_zero() {
        let (mut path, mut random, now) = (Direction::default(), Random::seeded(3), Instant::now());
        let jittery = Impairment {
            delay: Duration::from_millis(50),
            jitter: Duration::from_millis(50),
            ..Impairment::NONE
        };
        let delays: Vec<Duration> = (0..1000)
            .map(|_| match path.admit(&jittery, 100, now, &mut random) {
                Fate::Deliver(at) => at - now,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(100)));
        assert!(delays.iter().any(|d| *d < Duration::from_millis(10)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(90)));
    }
}
