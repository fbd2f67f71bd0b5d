//! How fast we may send video: an estimate of the uplink from the server's receiver
//! reports. LiveKit sends one a second for each of our RTP streams, with the share of
//! packets lost since the last one and, through our sender reports, the round trip.
//! Sans-IO: time is passed in.
//!
//! A full link drops packets **and** queues them: loss comes with a round trip longer than
//! the shortest seen. That is how congestion is told from a lossy radio link, where loss
//! comes without queueing and sending less would not help (the fault bench's random-loss
//! rows): only loss with queueing, or loss so heavy nothing else explains it, lowers the
//! rate. Queueing alone lowers nothing either: under jitter the round trip varies by as
//! much as a full queue adds. The loss-based half of GCC (RFC draft
//! `draft-ietf-rmcat-gcc-02`, §6) decides the same way, with its own thresholds.
//!
//! The shortest round trip may itself have been measured through a full queue (the link
//! was flooded from the first report). So loss without queueing is tested once: the rate
//! is lowered to what got through (by a fifth to a half). If the round trip then falls,
//! the loss grows past 30 %, or it halves at the lower rate, it was congestion (the new
//! shortest round trip shows it from then on); if none of these within 2.5 s, the
//! loss is the link's and the rate comes back, not to be tested again for 30 s.
//!
//! After a decrease the rate climbs back by 8 % a second, or 2 % a second near the rate
//! that was too much less than 30 s ago: a capped link is then probed gently, a loss
//! episode every few seconds rather than every second.

use std::time::{Duration, Instant};

/// Loss (share of packets) above which a report with queueing means congestion. Low: a
/// rate just above a cap loses little but keeps the queue full (100 ms more of delay).
const CONGESTION_LOSS: f64 = 0.01;
/// Loss that means congestion whatever the round trip says.
const HEAVY_LOSS: f64 = 0.30;
/// Round trip above the shortest seen that means a queue is building.
const QUEUEING: Duration = Duration::from_millis(30);
/// Below this loss and queueing the rate may grow.
const CLEAR_LOSS: f64 = 0.02;
const CLEAR_QUEUEING: Duration = Duration::from_millis(20);
/// Reports of the same second come for each stream: one decrease answers them all.
const DECREASE_HOLD: Duration = Duration::from_millis(700);
/// The shortest round trip is forgotten after this: the path may have changed.
const MIN_RTT_MEMORY: Duration = Duration::from_secs(30);
/// How long the rate that was too much is remembered, to probe near it gently.
const CONGESTION_MEMORY: Duration = Duration::from_secs(30);
const FAST_GROWTH: f64 = 0.08;
const SLOW_GROWTH: f64 = 0.02;
/// How long a test of loss without queueing waits for the round trip to fall.
const PROBE_TIME: Duration = Duration::from_millis(2_500);
/// A report covers the second before it: during a test, the loss of reports this soon
/// after its start was the rate before's.
const REPORT_SPAN: Duration = Duration::from_millis(1_200);
/// Loss found to be the link's is not tested again before this.
const PROBE_MEMORY: Duration = Duration::from_secs(30);
/// A round trip beyond this is not one (a forged or broken report).
const LONGEST_RTT: Duration = Duration::from_secs(10);

/// One receiver report block about one of our video streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UplinkReport {
    /// Packets lost since the previous report, in 256ths (RFC 3550's `fraction lost`).
    pub fraction_lost: u8,
    /// From the report's LSR/DLSR, when it echoes a sender report of ours.
    pub rtt: Option<Duration>,
}

/// The video rate estimate for the publisher PeerConnection.
#[derive(Debug, Clone)]
pub struct UplinkRate {
    target_kbps: u32,
    min_kbps: u32,
    max_kbps: u32,
    /// The shortest round trip, and when it was seen.
    min_rtt: Option<(Duration, Instant)>,
    /// Smoothed round trip (half of each new sample).
    srtt: Option<Duration>,
    last_decrease: Option<Instant>,
    last_report: Option<Instant>,
    /// The rate at the last congestion, and when.
    congested: Option<(u32, Instant)>,
    probe: Option<Probe>,
    /// When loss was last found to be the link's.
    last_probe: Option<Instant>,
    decreases: u64,
}

/// A test of whether loss is ours: the rate before it, the round trip then.
#[derive(Debug, Clone, Copy)]
struct Probe {
    before_kbps: u32,
    rtt_before: Duration,
    /// The loss that started it, and the most seen since.
    loss_before: f64,
    loss_since: f64,
    at: Instant,
}

/// What a report changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateChange {
    Unchanged,
    Decreased,
    Increased,
}

impl UplinkRate {
    /// Starts at `max_kbps` (what the encoders are set to: a good link loses nothing) and
    /// never goes below `min_kbps`.
    pub fn new(min_kbps: u32, max_kbps: u32) -> Self {
        let max_kbps = max_kbps.max(min_kbps);
        Self {
            target_kbps: max_kbps,
            min_kbps,
            max_kbps,
            min_rtt: None,
            srtt: None,
            last_decrease: None,
            last_report: None,
            congested: None,
            probe: None,
            last_probe: None,
            decreases: 0,
        }
    }

    /// The rate the video encoders may use together, in kbit/s.
    pub fn target_kbps(&self) -> u32 {
        self.target_kbps
    }

    /// How many times congestion lowered the rate.
    pub fn decreases(&self) -> u64 {
        self.decreases
    }

    /// The highest rate, when the tracks published change. The target follows down at
    /// once, or up if it was at the old highest.
    pub fn set_max_kbps(&mut self, max_kbps: u32) {
        let was_max = self.target_kbps >= self.max_kbps;
        self.max_kbps = max_kbps.max(self.min_kbps);
        if was_max || self.target_kbps > self.max_kbps {
            self.target_kbps = self.max_kbps;
        }
    }

    /// A report block about one of our video streams arrived.
    pub fn handle_report(&mut self, now: Instant, report: UplinkReport) -> RateChange {
        let loss = f64::from(report.fraction_lost) / 256.0;
        let queueing = self.observe_rtt(now, report.rtt);
        let since_report = self
            .last_report
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
            .min(Duration::from_secs(1));
        self.last_report = Some(now);
        if self
            .congested
            .is_some_and(|(_, at)| now.saturating_duration_since(at) > CONGESTION_MEMORY)
        {
            self.congested = None;
        }

        if let Some(probe) = &mut self.probe
            && now.saturating_duration_since(probe.at) >= REPORT_SPAN
        {
            probe.loss_since = probe.loss_since.max(loss);
        }
        if let Some(probe) = self.probe {
            let drained = report
                .rtt
                .is_some_and(|r| r.saturating_add(QUEUEING) < probe.rtt_before);
            if drained || loss > HEAVY_LOSS {
                // The queue drained, or the loss grew past doubt: it was congestion. The
                // rules below see it now.
                self.probe = None;
                self.congested = Some((probe.before_kbps, probe.at));
            } else if now.saturating_duration_since(probe.at) >= PROBE_TIME {
                self.probe = None;
                if probe.loss_since < probe.loss_before / 2.0 {
                    // Less sent, less lost: congestion, seen before the queue showed it.
                    self.congested = Some((probe.before_kbps, probe.at));
                    return RateChange::Unchanged;
                }
                // As much lost at a lower rate: the link's loss. Back to the rate before.
                self.last_probe = Some(now);
                self.target_kbps = self.target_kbps.max(probe.before_kbps);
                return RateChange::Increased;
            } else {
                return RateChange::Unchanged;
            }
        }

        let congestion = loss > HEAVY_LOSS || (loss > CONGESTION_LOSS && queueing > QUEUEING);
        if congestion {
            let held = self
                .last_decrease
                .is_some_and(|t| now.saturating_duration_since(t) < DECREASE_HOLD);
            if held {
                return RateChange::Unchanged;
            }
            // What got through at this rate, with a margin to drain the queue; never
            // more than halved at once (the loss may be partly the radio's).
            let before = self.target_kbps;
            let through = f64::from(before) * (1.0 - loss) * 0.9;
            let next = through.clamp(f64::from(before) * 0.5, f64::from(before) * 0.9);
            self.target_kbps = (next as u32).max(self.min_kbps);
            self.last_decrease = Some(now);
            self.congested = Some((before, now));
            self.decreases += 1;
            return if self.target_kbps < before {
                RateChange::Decreased
            } else {
                RateChange::Unchanged
            };
        }
        let tested = self
            .last_probe
            .is_some_and(|t| now.saturating_duration_since(t) < PROBE_MEMORY);
        if loss > CONGESTION_LOSS
            && !tested
            && let Some(rtt_before) = self.srtt
        {
            // Down to what got through, less 10 %: if that is under the cap the queue
            // drains. At least a fifth less, at most half.
            let before = self.target_kbps;
            let factor = ((1.0 - loss) * 0.9).clamp(0.5, 0.8);
            self.target_kbps = ((f64::from(before) * factor) as u32).max(self.min_kbps);
            self.probe = Some(Probe {
                before_kbps: before,
                rtt_before,
                loss_before: loss,
                loss_since: 0.0,
                at: now,
            });
            return RateChange::Decreased;
        }
        if loss >= CLEAR_LOSS || queueing >= CLEAR_QUEUEING || self.target_kbps >= self.max_kbps {
            return RateChange::Unchanged;
        }
        // Reports of several streams in the same second each grow it by their share.
        let near_congestion = self
            .congested
            .is_some_and(|(rate, _)| f64::from(self.target_kbps) > f64::from(rate) * 0.85);
        let growth = if near_congestion {
            SLOW_GROWTH
        } else {
            FAST_GROWTH
        };
        let grown = f64::from(self.target_kbps) * (1.0 + growth * since_report.as_secs_f64());
        let next = (grown.ceil() as u32).min(self.max_kbps);
        if next > self.target_kbps {
            self.target_kbps = next;
            RateChange::Increased
        } else {
            RateChange::Unchanged
        }
    }

    /// Takes a round-trip sample; returns the queueing it shows.
    fn observe_rtt(&mut self, now: Instant, rtt: Option<Duration>) -> Duration {
        let Some(rtt) = rtt.filter(|r| *r <= LONGEST_RTT) else {
            return self.queueing();
        };
        let stale = self.min_rtt.is_none_or(|(min, at)| {
            rtt <= min || now.saturating_duration_since(at) > MIN_RTT_MEMORY
        });
        if stale {
            self.min_rtt = Some((rtt, now));
        }
        self.srtt = Some(match self.srtt {
            Some(s) => (s + rtt) / 2,
            None => rtt,
        });
        self.queueing()
    }

    fn queueing(&self) -> Duration {
        match (self.srtt, self.min_rtt) {
            (Some(s), Some((min, _))) => s.saturating_sub(min),
            _ => Duration::ZERO,
        }
    }
}

#[cfg(test)]
#[path = "uplink_tests.rs"]
mod tests;
