use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

/// A simulated downlink: 200 packets a second (a camera's 120 and a voice's 80) with a
/// share lost, through the counters, fed to the guard every tick. Returns the guard's
/// changes with their time from the start.
struct Link {
    guard: SoundGuard,
    arrivals: Arc<DownlinkArrivals>,
    camera: ArrivalCounter,
    voice: ArrivalCounter,
    seq: u16,
    voice_seq: u16,
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
            camera: ArrivalCounter::new(Arc::clone(&arrivals), true),
            voice: ArrivalCounter::new(Arc::clone(&arrivals), false),
            arrivals,
            seq: 65_500,
            voice_seq: 1_000,
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
        self.run_split(seconds, loss, loss, video)
    }

    /// The same, the sound and the video losing shares of their own.
    fn run_split(
        &mut self,
        seconds: f64,
        sound_loss: f64,
        video_loss: f64,
        video: bool,
    ) -> Vec<(f64, GuardChange)> {
        let mut changes = Vec::new();
        let ticks = (seconds / TICK.as_secs_f64()).round() as usize;
        for _ in 0..ticks {
            for k in 0..10 {
                let is_video = k < 6;
                let loss = if is_video { video_loss } else { sound_loss };
                let lost = self.random() < loss;
                let (seq, counter) = if is_video {
                    (&mut self.seq, &mut self.camera)
                } else {
                    (&mut self.voice_seq, &mut self.voice)
                };
                *seq = seq.wrapping_add(1);
                if !lost {
                    counter.arrived(*seq);
                }
            }
            self.now += TICK;
            let (all, camera) = self.arrivals.counts();
            if let Some(change) = self.guard.handle_tick(self.now, all, camera, video) {
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
fn a_trial_ends_on_the_videos_loss_before_the_sound_is_lost() {
    use GuardChange::*;
    // A cap for 1 s pauses the video (at ~1.05 s); the trial comes 3 s later, into
    // whatever the link does then.
    let capped = || {
        let mut link = Link::new();
        link.run(1.0, 0.0, true);
        let changes = link.run(1.0, 0.9, true);
        assert_eq!(changes.iter().map(|c| c.1).collect::<Vec<_>>(), [Paused]);
        let trial_at = changes[0].0 + 3.0;
        link.run(trial_at - 2.0 - 0.06, 0.0, true);
        (link, trial_at)
    };
    // The keyframe burst: the video loses most packets, the sound (only delayed) none.
    let (mut link, trial_at) = capped();
    let changes = link.run_split(1.0, 0.0, 0.8, true);
    assert_eq!(
        changes.iter().map(|c| c.1).collect::<Vec<_>>()[..2],
        [Trial, Paused]
    );
    assert!((changes[0].0 - trial_at).abs() < 0.06, "{changes:?}");
    assert!(
        changes[1].0 - changes[0].0 <= 0.11,
        "the trial ended {:.2} s in",
        changes[1].0 - changes[0].0
    );
    // Or the keyframe goes through and the sound behind it is dropped.
    let (mut link, _) = capped();
    let changes = link.run_split(1.0, 0.6, 0.0, true);
    assert_eq!(
        changes.iter().map(|c| c.1).collect::<Vec<_>>()[..2],
        [Trial, Paused]
    );
    assert!(
        // 15 of the sound's packets: 0.2 s of the simulated voice (80 a second).
        changes[1].0 - changes[0].0 <= 0.26,
        "the trial ended {:.2} s in",
        changes[1].0 - changes[0].0
    );
    // Under 10 % random loss (the cap gone, a poor link still) the same trial passes.
    let (mut link, _) = capped();
    let changes = link.run(3.0, 0.1, true);
    assert_eq!(
        changes.iter().map(|c| c.1).collect::<Vec<_>>(),
        [Trial, Resumed],
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
    let counts = |expected, received| Counts { expected, received };
    for tick in 0..100u64 {
        let at = now + TICK * tick as u32;
        let sound = counts(tick / 4, tick / 10);
        assert_eq!(guard.handle_tick(at, sound, Counts::default(), true), None);
    }
    // Counters that go backwards (a new room's) are not a loss.
    assert_eq!(
        guard.handle_tick(
            now + Duration::from_secs(11),
            Counts::default(),
            Counts::default(),
            true
        ),
        None
    );
}

#[test]
fn the_counter_follows_sequence_numbers_as_they_come() {
    let arrivals = Arc::new(DownlinkArrivals::default());
    let mut counter = ArrivalCounter::new(Arc::clone(&arrivals), true);
    let totals = || {
        let (all, video) = arrivals.counts();
        assert_eq!(all, video, "a video track's packets count in both");
        (all.expected, all.received)
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
