//! The audio paths: our microphone (source → Opus → publisher track) and each remote
//! microphone (subscriber track → the output's [`RemoteAudio`], which the output's own
//! clock pulls through the jitter buffer and Opus). One task each; nothing on them
//! allocates per frame, locks, or logs.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use estrade_media::{
    AudioFrame, AudioSource, FRAME_SAMPLES, MAX_PACKET, OpusEncoder, PacketFeed, RemoteAudio,
};
use estrade_rtc::{LocalTrack, RemoteTrack};
use estrade_session::{ParticipantIdentity, TrackSid};
use tokio::sync::watch;

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
/// or the track is unpublished (the sender side of `enabled` is dropped).
pub(crate) async fn pump_microphone(
    mut source: impl AudioSource,
    track: LocalTrack,
    mut enabled: watch::Receiver<bool>,
) -> PumpEnd {
    let mut encoder = match OpusEncoder::new() {
        Ok(e) => e,
        Err(e) => return PumpEnd::Failed(e.to_string()),
    };
    let mut pcm: AudioFrame = [0; FRAME_SAMPLES];
    let mut packet = [0u8; MAX_PACKET];
    // Reclaims its allocation once the stack dropped the previous packet.
    let mut out = BytesMut::with_capacity(4 * MAX_PACKET);
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
                continue;
            }
        }
        if !*enabled.borrow() {
            continue; // muted: nothing leaves the machine
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

/// Track → the output's queue, as packets arrive. Ends with the track (the output then
/// sees the stream end), and then says (once, off the hot path) how many packets an output
/// that stopped pulling made it drop.
pub(crate) async fn feed_remote_audio(track: RemoteTrack, feed: PacketFeed) {
    let mut dropped = 0u64;
    while let Ok(p) = track.read().await {
        if feed
            .push(Instant::now(), p.sequence, p.timestamp, p.payload)
            .is_err()
        {
            dropped += 1;
        }
    }
    if dropped > 0 {
        tracing::warn!(track = %track.track_id(), dropped, "the audio output stopped pulling");
    }
}
