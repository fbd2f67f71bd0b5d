//! The audio paths: our microphone (source → Opus → publisher track) and each remote
//! microphone (subscriber track → the output's [`RemoteAudio`], which the output's own
//! clock pulls through the jitter buffer and Opus). One task each; nothing on them
//! allocates per frame, locks, or logs.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use estrade_media::{
    AudioFrame, AudioSource, FRAME_SAMPLES, LevelMeter, MAX_PACKET, OpusEncoder, PacketFeed,
    RemoteAudio,
};
use estrade_rtc::{LocalTrack, RemoteTrack};
use estrade_session::{ParticipantIdentity, TrackSid};
use tokio::sync::{mpsc, watch};

use crate::driver::Command;
use crate::events::RoomEvent;

const FRAME: Duration = Duration::from_millis(20);

/// Gives each remote microphone somewhere to play (speakers, a test recorder). The output
/// pulls `audio` on its own clock (a device callback, or a clock thread) until it says
/// [`Pulled::Ended`](estrade_media::Pulled::Ended).
pub trait AudioOutput: Send + Sync + 'static {
    fn open(&self, participant: &ParticipantIdentity, track: &TrackSid, audio: RemoteAudio);
}

/// Why a microphone stopped sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PumpEnd {
    SourceEnded(String),
    Unpublished,
    Failed(String),
}

/// Source → Opus → track, every 20 ms, while `enabled` says so. Ends when the source ends
/// or the track is unpublished (the sender side of `enabled` is dropped). While muted, the
/// source keeps running (unmute is instant) and its voice activity is watched: speaking
/// into a muted microphone tells the room task, which reports `SpokeWhileMuted`.
pub(crate) async fn pump_microphone(
    mut source: impl AudioSource,
    track: LocalTrack,
    mut enabled: watch::Receiver<bool>,
    notices: mpsc::Sender<Command>,
) -> PumpEnd {
    let mut encoder = match OpusEncoder::new() {
        Ok(e) => e,
        Err(e) => return PumpEnd::Failed(e.to_string()),
    };
    let mut pcm: AudioFrame = [0; FRAME_SAMPLES];
    let mut packet = [0u8; MAX_PACKET];
    // Reclaims its allocation once the stack dropped the previous packet.
    let mut out = BytesMut::with_capacity(4 * MAX_PACKET);
    let mut muted_speech = MutedSpeech::default();
    let mut meter = LevelMeter::new();
    let mut samples = [0f32; FRAME_SAMPLES];
    loop {
        tokio::select! {
            frame = source.next_frame(&mut pcm) => {
                if let Err(e) = frame {
                    return PumpEnd::SourceEnded(e.0);
                }
            }
            changed = enabled.changed() => {
                if changed.is_err() {
                    return PumpEnd::Unpublished;
                }
                muted_speech.reset();
                continue;
            }
        }
        if !*enabled.borrow() {
            // Muted: nothing leaves the machine. Measured here only if the source does not
            // say (a device's processing chain does).
            let voice = source.voice_activity().unwrap_or_else(|| {
                for (f, &s) in samples.iter_mut().zip(&pcm) {
                    *f = f32::from(s) / 32_768.0;
                }
                meter.measure(&samples).voice
            });
            if muted_speech.frame(voice) {
                // Rare (once per muted stretch): waiting for room in the queue is fine.
                let notice = Command::Notice(Box::new(RoomEvent::SpokeWhileMuted));
                if notices.send(notice).await.is_err() {
                    return PumpEnd::Unpublished;
                }
            }
            continue;
        }
        let n = match encoder.encode(&pcm, &mut packet) {
            Ok(n) => n,
            Err(e) => return PumpEnd::Failed(e.to_string()),
        };
        out.reserve(n);
        out.extend_from_slice(&packet[..n]);
        if let Err(e) = track.write(out.split().freeze(), FRAME).await {
            return PumpEnd::Failed(e.to_string());
        }
    }
}

/// "You are muted": a second of voice within a second and a half, while muted. Said once
/// per muted stretch, then again only after 15 s of the user still talking.
#[derive(Debug, Default)]
struct MutedSpeech {
    /// Voice in each of the last 75 frames (1.5 s), as bits.
    recent: u128,
    /// Frames until it may be said again.
    quiet_for: u32,
}

const SPEECH_FRAMES: u32 = 50;
const WINDOW: u32 = 75;
const REPEAT_FRAMES: u32 = 750;

impl MutedSpeech {
    /// One 20 ms frame while muted; true when the user should be told.
    fn frame(&mut self, voice: bool) -> bool {
        self.recent = ((self.recent << 1) | u128::from(voice)) & ((1u128 << WINDOW) - 1);
        self.quiet_for = self.quiet_for.saturating_sub(1);
        if self.quiet_for == 0 && self.recent.count_ones() >= SPEECH_FRAMES {
            self.quiet_for = REPEAT_FRAMES;
            self.recent = 0;
            return true;
        }
        false
    }

    /// Muted or unmuted: a new stretch.
    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Track → the output's queue, as packets arrive (counted for the sound guard), with the
/// copies of earlier frames a RED packet carries. Ends with the track (the output then
/// sees the stream end), and then says (once, off the hot path) how many packets an output
/// that stopped pulling made it drop, and how many broken RED packets were skipped.
pub(crate) async fn feed_remote_audio(
    track: RemoteTrack,
    feed: PacketFeed,
    mut arrivals: crate::sound_guard::ArrivalCounter,
) {
    let mut dropped = 0u64;
    while let Ok(p) = track.read().await {
        arrivals.arrived(p.sequence);
        let now = Instant::now();
        if feed.push(now, p.sequence, p.timestamp, p.payload).is_err() {
            dropped += 1;
        }
        // Copies of earlier frames (RED): they fill what was lost.
        for earlier in p.earlier.into_iter().flatten() {
            let _ = feed.push_copy(now, earlier.sequence, earlier.payload);
        }
    }
    if dropped > 0 {
        tracing::warn!(track = %track.track_id(), dropped, "the audio output stopped pulling");
    }
    let broken = track.broken_red();
    if broken > 0 {
        tracing::warn!(track = %track.track_id(), broken, "broken RED packets skipped");
    }
}

#[cfg(test)]
mod tests {
    use super::MutedSpeech;

    #[test]
    fn a_second_of_voice_while_muted_is_said_once_then_after_fifteen_seconds() {
        let mut m = MutedSpeech::default();
        // Coughs and short words: never.
        for k in 0..500 {
            assert!(!m.frame(k % 10 < 3), "frame {k}");
        }
        // Talking, with the gaps of speech (4 frames of 5): said after about a second.
        let said: Vec<usize> = (0..1600).filter(|k| m.frame(k % 5 != 0)).collect();
        assert_eq!(said.len(), 3, "{said:?}");
        assert!((45..75).contains(&said[0]), "about a second: {said:?}");
        assert_eq!(said[1] - said[0], 750, "then every 15 s of talking");
        m.reset();
        let again = (0..100).position(|_| m.frame(true));
        assert_eq!(again, Some(49), "a new muted stretch starts over");
    }
}
