//! Outputs that check instead of playing, for tests, benchmarks and the headless CLI's bots:
//! [`PulseRecorder`] analyses each remote microphone's synthetic tone bursts (onsets →
//! mouth-to-ear, frequency → whose voice); [`FrameRecorder`] reads each remote camera's
//! stamped test pattern (frame counter → order and loss, capture time → glass-to-glass).
//! Each remote microphone is pulled by a clock thread of its own, every 20 ms, as a
//! speaker would. One short lock per frame: fine for checking, not for a real device path.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use estrade_media::clock::spawn_clock;
use estrade_media::synthetic::{PulseAnalyser, is_audible, unix_us_now};
use estrade_media::{
    AudioFrame, FRAME_SAMPLES, I420Frame, PlayoutStats, Pulled, RemoteAudio, VideoSink,
};
use estrade_session::{ParticipantIdentity, TrackSid};

use crate::audio::AudioOutput;
use crate::video::VideoOutput;

/// What was heard from one participant.
#[derive(Debug, Clone, Default)]
pub struct Heard {
    pub pulses: PulseAnalyser,
    /// When the first frame with sound in it played.
    pub first_audible: Option<Instant>,
    /// The remote microphone's playout counters (frames from data, from FEC, concealed),
    /// as of the last 20 ms tick.
    pub playout: PlayoutStats,
}

/// Cheap to clone; every clone sees the same results.
#[derive(Clone, Default)]
pub struct PulseRecorder {
    heard: Arc<Mutex<HashMap<ParticipantIdentity, Heard>>>,
}

impl PulseRecorder {
    /// A snapshot of what was heard from `who` so far.
    pub fn heard_from(&self, who: &ParticipantIdentity) -> Heard {
        self.lock().get(who).cloned().unwrap_or_default()
    }

    pub fn all(&self) -> HashMap<ParticipantIdentity, Heard> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ParticipantIdentity, Heard>> {
        // A panic elsewhere while holding it leaves plain data behind: keep using it.
        self.heard.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl AudioOutput for PulseRecorder {
    fn open(&self, participant: &ParticipantIdentity, track: &TrackSid, mut audio: RemoteAudio) {
        let (from, recorder, track) = (participant.clone(), self.clone(), track.clone());
        let mut pcm: AudioFrame = [0; FRAME_SAMPLES];
        let started = spawn_clock("estrade-playout", Duration::from_millis(20), move |_| {
            let now = Instant::now();
            match audio.pull(now, &mut pcm) {
                Pulled::Audio => recorder.record(&from, Some(&pcm), now, audio.stats()),
                Pulled::Silence => recorder.record(&from, None, now, audio.stats()),
                Pulled::Ended => {
                    tracing::debug!(%track, stats = ?audio.stats(), "remote audio ended");
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        if let Err(e) = started {
            tracing::warn!(error = %e, "no thread to play remote audio");
        }
    }
}

impl PulseRecorder {
    fn record(
        &self,
        from: &ParticipantIdentity,
        frame: Option<&AudioFrame>,
        at: Instant,
        playout: PlayoutStats,
    ) {
        let played_us = unix_us_now();
        let mut heard = self.lock();
        let entry = match heard.get_mut(from) {
            Some(entry) => entry,
            None => heard.entry(from.clone()).or_default(),
        };
        entry.playout = playout;
        let Some(frame) = frame else { return };
        if entry.first_audible.is_none() && is_audible(frame) {
            entry.first_audible = Some(at);
        }
        entry.pulses.feed(frame, played_us);
    }
}

/// What was seen from one participant's camera.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Frame counters read from the stamped pattern, in display order.
    pub frames: Vec<u32>,
    pub glass_to_glass_ms: Vec<f64>,
    pub sizes: Vec<(u32, u32)>,
    /// When each frame was shown (Unix ms), as `sizes`.
    pub shown_unix_ms: Vec<i64>,
    /// Gaps of lost packets before a frame (each skips at least that frame).
    pub loss_gaps: u32,
    pub packets_lost: u64,
    pub keyframes_requested: u32,
    /// Frames shown whose stamp could not be read (garbled, or not the test pattern).
    pub unreadable: usize,
}

/// A [`VideoOutput`] that reads the synthetic camera's stamps instead of showing frames.
#[derive(Clone, Default)]
pub struct FrameRecorder {
    seen: Arc<Mutex<HashMap<ParticipantIdentity, Seen>>>,
}

impl FrameRecorder {
    pub fn seen_from(&self, who: &ParticipantIdentity) -> Seen {
        self.lock().get(who).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ParticipantIdentity, Seen>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Watcher {
    from: ParticipantIdentity,
    recorder: FrameRecorder,
}

impl VideoOutput for FrameRecorder {
    fn open(&self, participant: &ParticipantIdentity, _track: &TrackSid) -> Box<dyn VideoSink> {
        Box::new(Watcher {
            from: participant.clone(),
            recorder: self.clone(),
        })
    }
}

impl VideoSink for Watcher {
    fn packets_lost(&mut self, packets: u16) {
        let mut seen = self.recorder.lock();
        let entry = seen.entry(self.from.clone()).or_default();
        entry.loss_gaps += 1;
        entry.packets_lost += u64::from(packets);
    }

    fn keyframe_requested(&mut self) {
        let mut seen = self.recorder.lock();
        seen.entry(self.from.clone())
            .or_default()
            .keyframes_requested += 1;
    }

    fn show(&mut self, frame: &I420Frame, _at: Instant) {
        let stamp = estrade_media::synthetic_video::read(frame);
        let now_ms = unix_us_now() / 1000;
        let mut seen = self.recorder.lock();
        let entry = seen.entry(self.from.clone()).or_default();
        entry.sizes.push((frame.width(), frame.height()));
        entry.shown_unix_ms.push(now_ms as i64);
        match stamp {
            Some(s) => {
                entry.frames.push(s.frame);
                let now = now_ms & 0xff_ffff_ffff;
                entry
                    .glass_to_glass_ms
                    .push(now.wrapping_sub(s.captured_unix_ms) as f64);
            }
            None => entry.unreadable += 1,
        }
    }
}
