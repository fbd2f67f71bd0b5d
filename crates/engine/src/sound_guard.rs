//! Keeps the sound when our downlink cannot carry the video (a student on mobile data):
//! the remote video is paused from our side at once, before the server's estimator has
//! caught up. Sans-IO: time and counters are passed in.
//!
//! A link far below what is sent drops most packets, the sound's among them: at
//! 150 kbit/s against a 1.5 Mbit/s camera, nine in ten. livekit-server's stream allocator
//! pauses the video on its own, but measured 2.5–3 s after the cap began: the trainer's
//! voice was lost for those seconds. Here every remote stream's loss (sound and video)
//! is watched at arrival (sequence gaps, so Opus DTX's silences are no loss), and when
//! 60 % or more is lost over the newest 30 packets or more (150 ms of a camera and a
//! voice) the video is paused: the server stops forwarding it at once, and the sound gets
//! the link. A bottleneck's queue drops alike from every stream it carries, so the
//! video's loss is the sound's. Random loss even at 20 % does not come near (the
//! fault bench's loss rows; one chance in ~10^6 per window), and pausing would not help it.
//!
//! The pause lasts a hold (3 s, half as long again each time a trial fails, up to 12 s;
//! back to 3 s after 30 s without a pause). Then a **trial**: the video is asked for at
//! its lowest layer only (~150 kbit/s for a 720p simulcast camera, a tenth of the top),
//! and a loss of 20 % within 2 s pauses it again. A failed trial on a 150 kbit/s link
//! costs ~5 frames of sound, where asking for the top layer at once cost ~25. A trial
//! that passes gives the application its own settings back; from there the server's
//! estimator follows the link (it climbs to the top layer as its probes allow).

use std::time::{Duration, Instant};

/// How often the driver feeds the counters.
pub(crate) const TICK: Duration = Duration::from_millis(50);
/// Ticks remembered: the loss is computed over the newest ones holding enough packets.
const TICKS: usize = 20;
/// Packets the loss is computed over, at least (a 720p camera and a voice send ~200 a
/// second).
const ENOUGH: u64 = 30;
/// The share of packets lost that pauses the video, and during a trial.
const SHED_LOSS: f64 = 0.6;
const TRIAL_LOSS: f64 = 0.2;
const TRIAL: Duration = Duration::from_secs(2);
const FIRST_HOLD: Duration = Duration::from_secs(3);
const LONGEST_HOLD: Duration = Duration::from_secs(12);
/// A pause this long after the last one ended starts again from the first hold.
const CALM: Duration = Duration::from_secs(30);

/// What the driver is to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GuardChange {
    /// Pause every remote video (the sound is being lost).
    Paused,
    /// Ask for every remote video at its lowest layer (a trial).
    Trial,
    /// Ask for the application's video settings again.
    Resumed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Clear,
    Paused { until: Instant },
    Trial { until: Instant },
}

#[derive(Debug)]
pub(crate) struct SoundGuard {
    /// (expected, received) per tick, newest last.
    ticks: [(u64, u64); TICKS],
    filled: usize,
    totals: Option<(u64, u64)>,
    phase: Phase,
    hold: Duration,
    last_pause: Option<Instant>,
}

impl SoundGuard {
    pub(crate) fn new() -> Self {
        Self {
            ticks: [(0, 0); TICKS],
            filled: 0,
            totals: None,
            phase: Phase::Clear,
            hold: FIRST_HOLD,
            last_pause: None,
        }
    }

    /// Every [`TICK`]: the remote packets expected and received since the room began
    /// (cumulative, every remote track), and whether any remote video is wanted by the
    /// application. Returns what to do, if anything.
    pub(crate) fn handle_tick(
        &mut self,
        now: Instant,
        expected: u64,
        received: u64,
        video_wanted: bool,
    ) -> Option<GuardChange> {
        let (last_expected, last_received) = self.totals.unwrap_or((expected, received));
        self.totals = Some((expected, received));
        self.ticks.rotate_left(1);
        self.ticks[TICKS - 1] = (
            expected.saturating_sub(last_expected),
            received.saturating_sub(last_received),
        );
        self.filled = (self.filled + 1).min(TICKS);
        match self.phase {
            Phase::Paused { until } if now >= until => {
                self.phase = Phase::Trial { until: now + TRIAL };
                // What was lost before must not judge the trial.
                self.filled = 0;
                Some(GuardChange::Trial)
            }
            Phase::Paused { .. } => None,
            Phase::Trial { until } => {
                if self.loss().is_some_and(|l| l >= TRIAL_LOSS) {
                    self.hold = (self.hold.mul_f64(1.5)).min(LONGEST_HOLD);
                    return Some(self.pause(now));
                }
                if now < until {
                    return None;
                }
                self.phase = Phase::Clear;
                Some(GuardChange::Resumed)
            }
            Phase::Clear => {
                if self.last_pause.is_some_and(|at| now >= at + CALM) {
                    self.hold = FIRST_HOLD;
                    self.last_pause = None;
                }
                let shed = video_wanted && self.loss().is_some_and(|l| l >= SHED_LOSS);
                shed.then(|| self.pause(now))
            }
        }
    }

    fn pause(&mut self, now: Instant) -> GuardChange {
        self.phase = Phase::Paused {
            until: now + self.hold,
        };
        self.last_pause = Some(now);
        GuardChange::Paused
    }

    /// The share lost over the newest ticks holding [`ENOUGH`] packets, if they do.
    fn loss(&self) -> Option<f64> {
        let (mut expected, mut received) = (0, 0);
        for &(e, r) in self.ticks[TICKS - self.filled..].iter().rev() {
            expected += e;
            received += r;
            if expected >= ENOUGH {
                // Late packets can make more arrive than were expected in a window.
                return Some(expected.saturating_sub(received) as f64 / expected as f64);
            }
        }
        None
    }
}

/// Counts a remote track's packets at arrival, for the guard: one per track task,
/// feeding counters shared by all (two relaxed atomic adds per packet).
pub(crate) struct ArrivalCounter {
    highest: Option<u16>,
    shared: std::sync::Arc<DownlinkArrivals>,
}

/// Every remote track's packets, expected (by sequence number) and received.
#[derive(Debug, Default)]
pub(crate) struct DownlinkArrivals {
    pub(crate) expected: std::sync::atomic::AtomicU64,
    pub(crate) received: std::sync::atomic::AtomicU64,
}

/// A jump of more sequence numbers than this is a restarted stream (or a layer switch
/// the server did not smooth), not a loss.
const LONGEST_GAP: u16 = 500;

impl ArrivalCounter {
    pub(crate) fn new(shared: std::sync::Arc<DownlinkArrivals>) -> Self {
        Self {
            highest: None,
            shared,
        }
    }

    /// A packet with sequence number `seq` arrived.
    pub(crate) fn arrived(&mut self, seq: u16) {
        use std::sync::atomic::Ordering::Relaxed;
        let newer = match self.highest {
            None => Some(1),
            Some(highest) => {
                let ahead = seq.wrapping_sub(highest);
                (ahead != 0 && ahead < 0x8000).then_some(if ahead > LONGEST_GAP {
                    1
                } else {
                    ahead
                })
            }
        };
        if let Some(advance) = newer {
            self.highest = Some(seq);
            self.shared.expected.fetch_add(u64::from(advance), Relaxed);
        }
        // A late packet (or a duplicate) was already expected.
        self.shared.received.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
#[path = "sound_guard_tests.rs"]
mod tests;
