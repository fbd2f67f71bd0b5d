//! The video paths: our camera (source → VP8 → publisher track, keyframes on PLI) and each
//! remote camera (subscriber track → frame reassembly → VP8 → sink, PLI when a frame is
//! lost or undecodable). Encoding and decoding run with `block_in_place`: they take
//! milliseconds of CPU and must not stall other tasks on this worker.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use estrade_media::{I420Frame, VideoSink, VideoSource, Vp8Decoder, Vp8Encoder};
use estrade_rtc::{LocalTrack, RemoteTrack};
use estrade_session::{ParticipantIdentity, TrackSid};
use tokio::sync::watch;

use crate::audio::PumpEnd;

/// Keyframe requests are not repeated more often than this.
const PLI_INTERVAL: Duration = Duration::from_millis(300);

/// Gives each remote camera somewhere to show (a tile, a test checker).
pub trait VideoOutput: Send + Sync + 'static {
    fn open(&self, participant: &ParticipantIdentity, track: &TrackSid) -> Box<dyn VideoSink>;
}

/// How a camera is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

pub(crate) async fn pump_camera(
    mut source: impl VideoSource,
    settings: CameraSettings,
    track: LocalTrack,
    mut enabled: watch::Receiver<bool>,
) -> PumpEnd {
    let mut encoder = match Vp8Encoder::new(
        settings.width,
        settings.height,
        settings.fps,
        settings.bitrate_kbps,
    ) {
        Ok(e) => e,
        Err(e) => return PumpEnd::Failed(e.to_string()),
    };
    let mut frame = I420Frame::new(settings.width, settings.height);
    let mut packet = Vec::with_capacity(256 * 1024);
    let mut out = BytesMut::with_capacity(512 * 1024);
    let mut need_keyframe = true;
    let frame_time = Duration::from_secs(1) / settings.fps.max(1);
    loop {
        tokio::select! {
            next = source.next_frame(&mut frame) => {
                if let Err(e) = next {
                    return PumpEnd::SourceEnded(e.0);
                }
            }
            changed = enabled.changed() => {
                if changed.is_err() {
                    return PumpEnd::Unpublished;
                }
                // Back from a mute: the receivers need a fresh picture.
                need_keyframe |= *enabled.borrow();
                continue;
            }
        }
        if !*enabled.borrow() {
            continue;
        }
        let key = std::mem::take(&mut need_keyframe) | track.take_keyframe_request();
        let encoded = tokio::task::block_in_place(|| encoder.encode(&frame, key, &mut packet));
        if let Err(e) = encoded {
            return PumpEnd::Failed(e.to_string());
        }
        if packet.is_empty() {
            continue;
        }
        out.reserve(packet.len());
        out.extend_from_slice(&packet);
        if let Err(e) = track.write(out.split().freeze(), frame_time).await {
            return PumpEnd::Failed(e.to_string());
        }
    }
}

/// Counters of one remote camera, said when it ends.
#[derive(Debug, Default)]
struct VideoStats {
    shown: u64,
    decode_errors: u64,
    keyframe_requests: u64,
}

/// Track → frames → VP8 → sink. Ends with the track.
pub(crate) async fn play_remote_video(track: RemoteTrack, mut sink: Box<dyn VideoSink>) {
    let track_id = track.track_id();
    let mut stats = VideoStats::default();
    let mut decoder = match Vp8Decoder::new() {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, track = %track_id, "remote video not shown");
            // Still read (and drop) so the stack does not back up.
            while track.read().await.is_ok() {}
            return;
        }
    };
    let mut frames = track.vp8_frames();
    let mut picture = I420Frame::new(2, 2);
    let mut waiting_for_key = false;
    let mut last_pli: Option<Instant> = None;
    loop {
        let (data, dropped) = match frames.next().await {
            Ok(next) => next,
            Err(_) => break,
        };
        let decoded = if dropped > 0 {
            // References are gone: decoding on would show garbage until the next keyframe.
            waiting_for_key = true;
            Ok(false)
        } else if waiting_for_key && !is_vp8_keyframe(&data) {
            Ok(false)
        } else {
            tokio::task::block_in_place(|| decoder.decode(&data, &mut picture))
        };
        match decoded {
            Ok(true) => {
                waiting_for_key = false;
                stats.shown += 1;
                sink.show(&picture, Instant::now());
            }
            Ok(false) => {}
            Err(_) => {
                stats.decode_errors += 1;
                waiting_for_key = true;
            }
        }
        if waiting_for_key && last_pli.is_none_or(|t| t.elapsed() >= PLI_INTERVAL) {
            last_pli = Some(Instant::now());
            stats.keyframe_requests += 1;
            let _ = frames.track().request_keyframe().await;
        }
    }
    tracing::debug!(track = %track_id, ?stats, "remote video ended");
}

/// RFC 6386 §9.1: bit 0 of the first byte is 0 on keyframes.
fn is_vp8_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 1 == 0)
}
