//! Keeps the sound when our downlink cannot carry the video (a student on mobile data):
//! the remote video is paused from our side at once, before the server's estimator has
//! caught up. Sans-IO: time and counters are passed in.
//!
//! A link far below what is sent drops most packets, the sound's among them: at
//! 150 kbit/s against a 1.5 Mbit/s camera, nine in ten. livekit-server's stream allocator
//! pauses the video on its own, but measured 2.5–3 s after the cap began: the trainer's
//! voice was lost for those seconds. Here every remote stream's loss (sound and video)
//! is watched at arrival (sequence gaps, so Opus DTX's silences are no loss), and when
//! 80 % or more is lost over the newest 15 packets or more (75 ms of a camera and a
//! voice) the video is paused: the server stops forwarding it 100 ms later (its debounce
//! of a `disabled` setting), and the sound gets the link. Random loss even at 20 % does
//! not come near (one chance in ~10^6 per window), and pausing would not help it.
//!
//! The pause lasts a hold (3 s, half as long again each time a trial fails, up to 12 s;
//! back to 3 s after 30 s without a pause). Then a **trial**: the video is asked for at
//! its lowest layer only (~150 kbit/s for a 720p simulcast camera, a tenth of the top),
//! and it is paused again if the sound loses 35 % or the video half of its packets
//! within 2 s (`SoundGuard::trial_failed`). A failed trial on a 150 kbit/s link costs
//! 3–23 frames of the trainer's voice (measured; most 6–13), where asking for the top
//! layer at once cost ~25. A trial that passes gives the application its own settings
//! back; from there the server's estimator follows the link (it climbs to the top layer
//! as its probes allow).

use std::time::{Duration, Instant};

/// How often the driver feeds the counters.
pub(crate) const TICK: Duration = Duration::from_millis(50);
/// Ticks remembered: the loss is computed over the newest ones holding enough packets.
const TICKS: usize = 20;
/// Packets the loss is computed over, at least. Under a cap few packets come (at 150
/// kbit/s, ~17 of a camera's a second), and each reveals the gap before it (~9 lost):
/// so the fewer needed, the sooner a cap is seen. 15 at 80 % pause as rarely under 20 %
/// random loss as 30 at 60 % did (~1 in 10^6 per window), after two of those packets
/// rather than four (measured: the pause 0.25–0.36 s into the cap, from 0.30–0.41 s).
const ENOUGH: u64 = 15;
/// The share of packets lost that pauses the video.
const SHED_LOSS: f64 = 0.8;
/// During a trial: 35 % of the sound's newest 15 packets or more lost ends it (0.15 s of
/// two voices), or half of the video's newest 10 or more. Under 10 % random loss each
/// trips about 1 window in 500 (so a trial then fails now and then, and the video comes
/// a hold later).
const SOUND_ENOUGH: u64 = 15;
const TRIAL_SOUND_LOSS: f64 = 0.35;
const VIDEO_ENOUGH: u64 = 10;
const TRIAL_VIDEO_LOSS: f64 = 0.5;
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

/// Packets expected (by sequence number) and received, cumulative since the room began.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) expected: u64,
    pub(crate) received: u64,
}

/// The newest [`TICKS`] ticks of one set of counters.
#[derive(Debug)]
struct Window {
    /// (expected, received) per tick, newest last.
    ticks: [(u64, u64); TICKS],
    filled: usize,
    totals: Option<Counts>,
}

impl Window {
    fn new() -> Self {
        Self {
            ticks: [(0, 0); TICKS],
            filled: 0,
            totals: None,
        }
    }

    fn push(&mut self, counts: Counts) {
        let last = self.totals.unwrap_or(counts);
        self.totals = Some(counts);
        self.ticks.rotate_left(1);
        self.ticks[TICKS - 1] = (
            counts.expected.saturating_sub(last.expected),
            counts.received.saturating_sub(last.received),
        );
        self.filled = (self.filled + 1).min(TICKS);
    }

    /// Forgets the ticks so far (what was lost before a trial must not judge it).
    fn forget(&mut self) {
        self.filled = 0;
    }

    /// The share lost over the newest ticks holding `enough` packets, if they do.
    fn loss(&self, enough: u64) -> Option<f64> {
        let (mut expected, mut received) = (0, 0);
        for &(e, r) in self.ticks[TICKS - self.filled..].iter().rev() {
            expected += e;
            received += r;
            if expected >= enough {
                // Late packets can make more arrive than were expected in a window.
                return Some(expected.saturating_sub(received) as f64 / expected as f64);
            }
        }
        None
    }
}

#[derive(Debug)]
pub(crate) struct SoundGuard {
    /// Every remote stream; the sound's alone and the video's alone.
    all: Window,
    sound: Window,
    video: Window,
    phase: Phase,
    hold: Duration,
    last_pause: Option<Instant>,
}

impl SoundGuard {
    pub(crate) fn new() -> Self {
        Self {
            all: Window::new(),
            sound: Window::new(),
            video: Window::new(),
            phase: Phase::Clear,
            hold: FIRST_HOLD,
            last_pause: None,
        }
    }

    /// Every [`TICK`]: the remote packets so far (every remote track, and the video
    /// tracks alone), and whether any remote video is wanted by the application. Returns
    /// what to do, if anything.
    pub(crate) fn handle_tick(
        &mut self,
        now: Instant,
        all: Counts,
        video: Counts,
        video_wanted: bool,
    ) -> Option<GuardChange> {
        self.all.push(all);
        self.sound.push(Counts {
            expected: all.expected.saturating_sub(video.expected),
            received: all.received.saturating_sub(video.received),
        });
        self.video.push(video);
        match self.phase {
            Phase::Paused { until } if now >= until => {
                self.phase = Phase::Trial { until: now + TRIAL };
                self.all.forget();
                self.sound.forget();
                self.video.forget();
                Some(GuardChange::Trial)
            }
            Phase::Paused { .. } => None,
            Phase::Trial { until } => {
                if self.trial_failed() {
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
                let shed = video_wanted && self.all.loss(ENOUGH).is_some_and(|l| l >= SHED_LOSS);
                shed.then(|| self.pause(now))
            }
        }
    }

    /// The link did not carry the lowest layer: the sound loses 35 %, or the video half
    /// of its packets. Either can come first. The trial's first keyframe is a burst; on a
    /// link that cannot carry it most of it may be lost while the sound is only delayed
    /// (then the video's loss ends the trial ~0.1 s after the burst), or the queue's
    /// first packets may be the keyframe's and the sound's the ones dropped behind it
    /// (measured: 5 of 18 video packets lost, 20 of 49 of the sound's).
    fn trial_failed(&self) -> bool {
        self.sound
            .loss(SOUND_ENOUGH)
            .is_some_and(|l| l >= TRIAL_SOUND_LOSS)
            || self
                .video
                .loss(VIDEO_ENOUGH)
                .is_some_and(|l| l >= TRIAL_VIDEO_LOSS)
    }

    fn pause(&mut self, now: Instant) -> GuardChange {
        self.phase = Phase::Paused {
            until: now + self.hold,
        };
        self.last_pause = Some(now);
        GuardChange::Paused
    }
}

/// Counts a remote track's packets at arrival, for the guard: one per track task,
/// feeding counters shared by all (two relaxed atomic adds per packet, four for video).
pub(crate) struct ArrivalCounter {
    highest: Option<u16>,
    shared: std::sync::Arc<DownlinkArrivals>,
    video: bool,
}

/// Every remote track's packets, expected (by sequence number) and received, and the
/// video tracks' alone.
#[derive(Debug, Default)]
pub(crate) struct DownlinkArrivals {
    expected: std::sync::atomic::AtomicU64,
    received: std::sync::atomic::AtomicU64,
    video_expected: std::sync::atomic::AtomicU64,
    video_received: std::sync::atomic::AtomicU64,
}

impl DownlinkArrivals {
    /// The counts so far: every track's, the video's.
    pub(crate) fn counts(&self) -> (Counts, Counts) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            Counts {
                expected: self.expected.load(Relaxed),
                received: self.received.load(Relaxed),
            },
            Counts {
                expected: self.video_expected.load(Relaxed),
                received: self.video_received.load(Relaxed),
            },
        )
    }
}

/// A jump of more sequence numbers than this is a restarted stream (or a layer switch
/// the server did not smooth), not a loss.
const LONGEST_GAP: u16 = 500;

impl ArrivalCounter {
    /// Counts a track's packets into `shared` (and into the video's counts if `video`).
    pub(crate) fn new(shared: std::sync::Arc<DownlinkArrivals>, video: bool) -> Self {
        Self {
            highest: None,
            shared,
            video,
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
            if self.video {
                self.shared
                    .video_expected
                    .fetch_add(u64::from(advance), Relaxed);
            }
        }
        // A late packet (or a duplicate) was already expected.
        self.shared.received.fetch_add(1, Relaxed);
        if self.video {
            self.shared.video_received.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
#[path = "sound_guard_tests.rs"]
mod tests;
