use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::*;

/// A simulated downlink: 200 packets a second (a camera and a voice) with a share lost,
/// through the counter, fed to the guard every tick. Returns the guard's changes with
/// their time from the start.
struct Link {
    guard: SoundGuard,
    arrivals: Arc<DownlinkArrivals>,
    counter: ArrivalCounter,
    seq: u16,
    start: Instant,
    now: Instant,
    /// A xorshift: the same "random" loss every run.
    state: u64,
}

impl Link {
    fn new() -> Self {
        let arrivals = Arc::new(DownlinkArrivals::default());
        let start = Instant::now();
        Self {
            guard: SoundGuard::new(),
            counter: ArrivalCounter::new(Arc::clone(&arrivals)),
            arrivals,
            seq: 65_500,
            start,
            now: start,
            state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn random(&mut self) -> f64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `seconds` of the link losing `loss`; the changes, at seconds from the start.
    fn run(&mut self, seconds: f64, loss: f64, video: bool) -> Vec<(f64, GuardChange)> {
        let mut changes = Vec::new();
        let ticks = (seconds / TICK.as_secs_f64()).round() as usize;
        for _ in 0..ticks {
            for _ in 0..10 {
                self.seq = self.seq.wrapping_add(1);
                if self.random() >= loss {
                    self.counter.arrived(self.seq);
                }
            }
            self.now += TICK;
            let (e, r) = (
                self.arrivals.expected.load(Relaxed),
                self.arrivals.received.load(Relaxed),
            );
            if let Some(change) = self.guard.handle_tick(self.now, e, r, video) {
                changes.push(((self.now - self.start).as_secs_f64(), change));
            }
        }
        changes
    }
}

#[test]
fn a_link_far_below_the_video_pauses_it_within_a_fifth_of_a_second() {
    let mut link = Link::new();
    assert!(link.run(5.0, 0.0, true).is_empty());
    let changes = link.run(1.0, 0.9, true);
    let (at, change) = changes[0];
    assert_eq!(change, GuardChange::Paused);
    assert!(at - 5.0 <= 0.21, "paused {:.1} s into the cap", at - 5.0);
    assert!(matches!(link.guard.phase, Phase::Paused { .. }));
}

#[test]
fn random_loss_up_to_a_fifth_never_pauses() {
    let mut link = Link::new();
    for loss in [0.05, 0.1, 0.2] {
        assert_eq!(link.run(120.0, loss, true), [], "{loss}");
    }
}

#[test]
fn a_pause_holds_then_a_trial_at_the_lowest_layer_decides() {
    use GuardChange::*;
    let mut link = Link::new();
    link.run(1.0, 0.0, true);
    // The cap goes on: paused at once; each trial fails within a fifth of a second and
    // the next hold is half as long again.
    let changes = link.run(20.0, 0.9, true);
    let kinds: Vec<GuardChange> = changes.iter().map(|c| c.1).collect();
    assert_eq!(
        kinds[..5],
        [Paused, Trial, Paused, Trial, Paused],
        "{changes:?}"
    );
    let held = |i: usize| changes[i + 1].0 - changes[i].0;
    assert!((held(0) - 3.0).abs() < 0.08, "{changes:?}");
    assert!(held(1) <= 0.21, "the trial fails fast: {changes:?}");
    assert!((held(2) - 4.5).abs() < 0.08, "{changes:?}");
    // The cap lifts: the next trial passes, and 2 s later the video is given back.
    let changes = link.run(20.0, 0.0, true);
    assert_eq!(
        changes.iter().map(|c| c.1).collect::<Vec<_>>(),
        [Trial, Resumed],
        "{changes:?}"
    );
    assert!(
        (changes[1].0 - changes[0].0 - 2.0).abs() < 0.08,
        "{changes:?}"
    );
    // After 30 s without a pause, the next one holds 3 s again.
    link.run(30.0, 0.0, true);
    let changes = link.run(5.0, 0.9, true);
    assert!(
        (changes[1].0 - changes[0].0 - 3.0).abs() < 0.08,
        "{changes:?}"
    );
}

#[test]
fn nothing_is_paused_when_no_video_is_wanted_or_too_little_sound_arrives() {
    let mut link = Link::new();
    assert_eq!(link.run(5.0, 0.9, false), []);
    // Silence (DTX): a packet now and then, some lost; nothing to judge by.
    let mut guard = SoundGuard::new();
    let now = Instant::now();
    for tick in 0..100u64 {
        let at = now + TICK * tick as u32;
        assert_eq!(guard.handle_tick(at, tick / 4, tick / 10, true), None);
    }
    // Counters that go backwards (a new room's) are not a loss.
    assert_eq!(
        guard.handle_tick(now + Duration::from_secs(11), 0, 0, true),
        None
    );
}

#[test]
fn the_counter_follows_sequence_numbers_as_they_come() {
    let arrivals = Arc::new(DownlinkArrivals::default());
    let mut counter = ArrivalCounter::new(Arc::clone(&arrivals));
    let totals = || {
        (
            arrivals.expected.load(Relaxed),
            arrivals.received.load(Relaxed),
        )
    };
    // Across the wrap, two lost.
    for seq in [65_534u16, 65_535, 2, 3] {
        counter.arrived(seq);
    }
    assert_eq!(totals(), (6, 4));
    // One of them late: received, not expected again; a duplicate likewise.
    counter.arrived(0);
    counter.arrived(3);
    assert_eq!(totals(), (6, 6));
    // A restarted stream (a jump of thousands) is not thousands lost.
    counter.arrived(30_000);
    assert_eq!(totals(), (7, 7));
}
