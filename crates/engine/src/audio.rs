//! The audio paths: our microphone (source → Opus → publisher track) and each remote
//! microphone (subscriber track → jitter buffer → Opus → sink). One task each; nothing on
//! them allocates per frame, locks, or logs.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use estrade_media::{
    AudioFrame, AudioSink, AudioSource, FRAME_SAMPLES, JitterBuffer, MAX_PACKET, OpusDecoder,
    OpusEncoder, Playout,
};
use estrade_rtc::{LocalTrack, RemoteTrack};
use estrade_session::{ParticipantIdentity, TrackSid};
use tokio::sync::watch;

const FRAME: Duration = Duration::from_millis(20);

/// Gives each remote microphone somewhere to play (speakers, a test recorder).
pub trait AudioOutput: Send + Sync + 'static {
    fn open(&self, participant: &ParticipantIdentity, track: &TrackSid) -> Box<dyn AudioSink>;
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

/// Track → jitter buffer → Opus → sink on a 20 ms playout clock. Ends with the track, and
/// then says (once, off the hot path) what its jitter buffer and decoder went through.
pub(crate) async fn play_remote_audio(track: RemoteTrack, mut sink: Box<dyn AudioSink>) {
    // Without a decoder the track is still read (and dropped) so the stack does not back up.
    let mut decoder = match OpusDecoder::new() {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!(error = %e, track = %track.track_id(), "remote audio not played");
            None
        }
    };
    let mut buffer = JitterBuffer::new();
    let mut pcm: AudioFrame = [0; FRAME_SAMPLES];
    let mut decode_errors = 0u64;
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            packet = track.read() => match packet {
                Ok(p) => buffer.push(Instant::now(), p.sequence, p.timestamp, p.payload),
                Err(_) => break,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                let Some(decoder) = decoder.as_mut() else { continue };
                let decoded = match buffer.pop(now) {
                    Playout::Buffering => continue,
                    Playout::Frame(p) => decoder.decode(&p, &mut pcm),
                    Playout::Recover { next } => decoder.decode_fec(&next, &mut pcm),
                    Playout::Conceal => decoder.conceal(&mut pcm),
                };
                if decoded.is_err() {
                    decode_errors += 1;
                    if decoder.conceal(&mut pcm).is_err() {
                        pcm.fill(0);
                    }
                }
                sink.play(&pcm, now);
            }
        }
    }
    tracing::debug!(
        track = %track.track_id(),
        jitter = ?buffer.stats(),
        decode_errors,
        "remote audio ended"
    );
}
