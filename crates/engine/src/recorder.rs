//! An [`AudioOutput`] that listens instead of playing: it analyses each remote microphone's
//! synthetic tone bursts (onsets → mouth-to-ear, frequency → whose voice) and notes when
//! each first played. For tests, benchmarks and the headless CLI's bots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use estrade_media::synthetic::{PulseAnalyser, unix_us_now};
use estrade_media::{AudioFrame, AudioSink};
use estrade_session::{ParticipantIdentity, TrackSid};

use crate::audio::AudioOutput;

/// What was heard from one participant.
#[derive(Debug, Clone, Default)]
pub struct Heard {
    pub pulses: PulseAnalyser,
    pub first_played: Option<Instant>,
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

struct Listener {
    from: ParticipantIdentity,
    recorder: PulseRecorder,
}

impl AudioOutput for PulseRecorder {
    fn open(&self, participant: &ParticipantIdentity, _track: &TrackSid) -> Box<dyn AudioSink> {
        Box::new(Listener {
            from: participant.clone(),
            recorder: self.clone(),
        })
    }
}

impl AudioSink for Listener {
    fn play(&mut self, frame: &AudioFrame, at: Instant) {
        let played_us = unix_us_now();
        let mut heard = self.recorder.lock();
        let entry = heard.entry(self.from.clone()).or_default();
        entry.first_played.get_or_insert(at);
        entry.pulses.feed(frame, played_us);
    }
}
