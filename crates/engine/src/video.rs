//! The video paths: our camera (source → one encoder per simulcast layer, each fed a
//! halved copy of the layer above → publisher track, keyframes on PLI) and each remote
//! camera (subscriber track → frame reassembly → decoder of the publisher's codec → sink,
//! PLI when a frame is lost or undecodable). Encoding and decoding run with `block_in_place`: they take
//! milliseconds of CPU and must not stall other tasks on this worker.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use estrade_media::{I420Frame, VideoCodec, VideoDecoder, VideoEncoder, VideoSink, VideoSource};
use estrade_rtc::{LocalTrack, RemoteTrack};
use estrade_session::{ParticipantIdentity, TrackSid, VideoLayer, VideoQuality};
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
    /// For the full-size layer; the smaller simulcast layers get less.
    pub bitrate_kbps: u32,
    pub codec: VideoCodec,
    /// Also send half- and quarter-size layers, so each viewer gets what its tile needs.
    /// Ignored (one layer) when the size is not a multiple of 4 or below 640×360.
    pub simulcast: bool,
}

impl CameraSettings {
    /// The layers actually sent, lowest first (LiveKit's rids `q`, `h`, `f`).
    pub(crate) fn layers(&self) -> Vec<VideoLayer> {
        let (w, h) = (self.width, self.height);
        let full = VideoLayer {
            quality: VideoQuality::High,
            rid: "f".into(),
            width: w,
            height: h,
            bitrate_kbps: self.bitrate_kbps,
        };
        if !self.simulcast || w % 4 != 0 || h % 4 != 0 || w.min(h) < 360 {
            return vec![full];
        }
        vec![
            VideoLayer {
                quality: VideoQuality::Low,
                rid: "q".into(),
                width: w / 4,
                height: h / 4,
                bitrate_kbps: (self.bitrate_kbps / 10).max(60),
            },
            VideoLayer {
                quality: VideoQuality::Medium,
                rid: "h".into(),
                width: w / 2,
                height: h / 2,
                bitrate_kbps: (self.bitrate_kbps * 3 / 10).max(150),
            },
            full,
        ]
    }
}

/// What a camera may send, decided by the room's task: its share of the uplink estimate
/// and the layers the server says someone receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VideoPolicy {
    pub kbps: u32,
    /// By quality: low, medium, high.
    pub wanted: [bool; 3],
}

impl VideoPolicy {
    pub(crate) fn all(kbps: u32) -> Self {
        Self {
            kbps,
            wanted: [true; 3],
        }
    }
}

/// A layer below this is not worth its packets.
const LAYER_FLOOR_KBPS: u32 = 30;

/// Shares `policy.kbps` among the layers (lowest first), as browsers do under a low
/// estimate: each wanted layer gets its nominal rate in turn from the lowest; the lowest
/// wanted one is always sent (down to a floor: the picture goes on, blurrier); a higher
/// one only with at least 60 % of its rate, and none above one that did not fit. `None`:
/// not sent.
pub(crate) fn allocate(layers: &[VideoLayer], policy: &VideoPolicy) -> Vec<Option<u32>> {
    let mut left = policy.kbps;
    let mut first = true;
    let mut stopped = false;
    layers
        .iter()
        .map(|layer| {
            let wanted = policy.wanted[quality_index(layer.quality)];
            if !wanted || stopped {
                return None;
            }
            let rate = if first {
                first = false;
                layer.bitrate_kbps.min(left.max(LAYER_FLOOR_KBPS))
            } else if left >= layer.bitrate_kbps * 6 / 10 {
                layer.bitrate_kbps.min(left)
            } else {
                stopped = true;
                return None;
            };
            left = left.saturating_sub(rate);
            Some(rate)
        })
        .collect()
}

/// Where a quality sits in [`VideoPolicy::wanted`].
pub(crate) fn quality_index(quality: VideoQuality) -> usize {
    match quality {
        VideoQuality::Low => 0,
        VideoQuality::Medium => 1,
        VideoQuality::High => 2,
    }
}

/// One layer's encoder and its reused frame. (Its output lives apart, in `packets`: an
/// encoder is not `Sync` and must not be borrowed across the send's await.)
struct LayerEncoder {
    encoder: VideoEncoder,
    /// The frame at this layer's size (2×2 and unused for the full-size layer).
    scaled: I420Frame,
    need_keyframe: bool,
    /// The rate it is set to; `None` while the layer is not sent.
    kbps: Option<u32>,
}

impl LayerEncoder {
    /// Follows the allocation: a layer sent again starts with a keyframe.
    fn apply(&mut self, kbps: Option<u32>) -> Result<(), estrade_media::CodecError> {
        if let Some(rate) = kbps {
            if self.kbps.is_none() {
                self.need_keyframe = true;
            }
            if self.kbps != Some(rate) {
                self.encoder.set_bitrate(rate)?;
            }
        }
        self.kbps = kbps;
        Ok(())
    }
}

pub(crate) async fn pump_camera(
    mut source: impl VideoSource,
    settings: CameraSettings,
    layers: Vec<VideoLayer>,
    track: LocalTrack,
    mut enabled: watch::Receiver<bool>,
    mut policy: watch::Receiver<VideoPolicy>,
) -> PumpEnd {
    let mut encoders = Vec::with_capacity(layers.len());
    for layer in &layers {
        match VideoEncoder::new(
            settings.codec,
            layer.width,
            layer.height,
            settings.fps,
            layer.bitrate_kbps,
        ) {
            Ok(encoder) => encoders.push(LayerEncoder {
                encoder,
                // The full-size layer reads the source frame: it needs no copy.
                scaled: if layer.quality == VideoQuality::High {
                    I420Frame::new(2, 2)
                } else {
                    I420Frame::new(layer.width, layer.height)
                },
                need_keyframe: true,
                kbps: Some(layer.bitrate_kbps),
            }),
            Err(e) => return PumpEnd::Failed(e.to_string()),
        }
    }
    let mut packets: Vec<Vec<u8>> = layers
        .iter()
        .map(|_| Vec::with_capacity(256 * 1024))
        .collect();
    let mut frame = I420Frame::new(settings.width, settings.height);
    let mut out = BytesMut::with_capacity(512 * 1024);
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
                // Off releases the device; back on, the receivers need a fresh picture.
                let on = *enabled.borrow();
                // Opening a device blocks (a frame or two): not on this worker's other tasks.
                tokio::task::block_in_place(|| source.set_active(on));
                if on {
                    encoders.iter_mut().for_each(|l| l.need_keyframe = true);
                }
                continue;
            }
        }
        if !*enabled.borrow() {
            continue;
        }
        if policy.has_changed().unwrap_or(false) {
            let rates = allocate(&layers, &policy.borrow_and_update());
            for (layer, rate) in encoders.iter_mut().zip(rates) {
                if let Err(e) = layer.apply(rate) {
                    return PumpEnd::Failed(e.to_string());
                }
            }
        }
        for (at, layer) in encoders.iter_mut().enumerate() {
            layer.need_keyframe |= track.take_keyframe_request(at);
        }
        let encoded =
            tokio::task::block_in_place(|| encode_layers(&frame, &mut encoders, &mut packets));
        if let Err(e) = encoded {
            return PumpEnd::Failed(e.to_string());
        }
        for (at, packet) in packets.iter().enumerate() {
            if packet.is_empty() {
                continue;
            }
            out.reserve(packet.len());
            out.extend_from_slice(packet);
            let frame = out.split().freeze();
            if let Err(e) = track.write_layer(at, frame, frame_time).await {
                return PumpEnd::Failed(e.to_string());
            }
        }
    }
}

/// Scales the source down layer by layer (full → half → quarter) and encodes each.
fn encode_layers(
    frame: &I420Frame,
    encoders: &mut [LayerEncoder],
    packets: &mut [Vec<u8>],
) -> Result<(), estrade_media::CodecError> {
    let top = encoders.len() - 1;
    let mut above = frame;
    for (at, (layer, packet)) in encoders.iter_mut().zip(packets).enumerate().rev() {
        // A layer not sent is still scaled: the one below is made from it.
        let sent = layer.kbps.is_some();
        packet.clear();
        if at == top {
            if sent {
                let key = std::mem::take(&mut layer.need_keyframe);
                layer.encoder.encode(frame, key, packet)?;
            }
            continue;
        }
        above.downscale_half_into(&mut layer.scaled);
        if sent {
            let key = std::mem::take(&mut layer.need_keyframe);
            layer.encoder.encode(&layer.scaled, key, packet)?;
        }
        let layer: &LayerEncoder = layer;
        above = &layer.scaled;
    }
    Ok(())
}

/// Whole frames waiting for the decoder, at most (a quarter second at 30 fps).
const FRAMES_QUEUED: usize = 8;

/// Reads a remote camera's RTP in a task of its own, whole frames out: the stack stamps
/// each packet's arrival when it is read (the transport-wide feedback the server's
/// estimator reads), so reading must not wait behind a 10–20 ms decode. (Whether late
/// stamps are why the server lowers our video under jitter more than libwebrtc's is not
/// settled: the fault bench's jitter row did not clearly change with this.) A frame the
/// decoder cannot take in time is dropped and counted as a loss (a keyframe is asked).
fn read_frames(
    mut frames: estrade_rtc::RemoteVideoFrames,
) -> tokio::sync::mpsc::Receiver<(bytes::Bytes, u16)> {
    let (tx, rx) = tokio::sync::mpsc::channel(FRAMES_QUEUED);
    tokio::spawn(async move {
        let mut overflowed: u16 = 0;
        while let Ok((data, dropped)) = frames.next().await {
            let dropped = dropped.saturating_add(overflowed);
            match tx.try_send((data, dropped)) {
                Ok(()) => overflowed = 0,
                // This frame is lost to the decoder too: at least one more.
                Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                    overflowed = dropped.saturating_add(1);
                }
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
    });
    rx
}

/// Counters of one remote camera, said when it ends.
#[derive(Debug, Default)]
struct VideoStats {
    shown: u64,
    decode_errors: u64,
    keyframe_requests: u64,
}

/// Track → frames → VP8 → sink. Ends with the track.
/// How far beyond its published size a remote camera may decode: publishers change
/// resolution mid-call (and a phone turns), but a 720p track sending 4K keyframes is a
/// peer inflating our memory.
fn decode_limit(published: (u32, u32)) -> (u32, u32) {
    let grow = |side: u32| side.saturating_add(side / 4).saturating_add(16);
    let (w, h) = published;
    if w == 0 || h == 0 {
        // Not said: the decoder's hard cap (4K) holds.
        return (0, 0);
    }
    (grow(w), grow(h))
}

/// Decodes `track` into `sink`. `published`: the size its publisher announced (0 × 0 if
/// none), which bounds what is decoded. Its packets are counted in `arrivals`.
pub(crate) async fn play_remote_video(
    track: RemoteTrack,
    mut sink: Box<dyn VideoSink>,
    published: (u32, u32),
    mut arrivals: crate::sound_guard::ArrivalCounter,
) {
    let track_id = track.track_id();
    let mut stats = VideoStats::default();
    let decoder = track
        .video_codec()
        .ok_or_else(|| "a codec we do not decode".to_owned())
        .and_then(|codec| {
            VideoDecoder::new(codec)
                .map(|d| (codec, d))
                .map_err(|e| e.to_string())
        });
    let (codec, mut decoder) = match decoder {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, track = %track_id, "remote video not shown");
            // Still read (and drop) so the stack does not back up.
            while track.read().await.is_ok() {}
            return;
        }
    };
    let (max_w, max_h) = decode_limit(published);
    decoder.set_max_size(max_w, max_h);
    let keyframes = track.clone();
    let mut frames = read_frames(
        track
            .video_frames(codec)
            .with_arrivals(move |seq| arrivals.arrived(seq)),
    );
    let mut picture = I420Frame::new(2, 2);
    let mut waiting_for_key = false;
    let mut last_pli: Option<Instant> = None;
    while let Some((data, dropped)) = frames.recv().await {
        if dropped > 0 {
            sink.packets_lost(dropped);
        }
        let decoded = if dropped > 0 {
            // References are gone: decoding on would show garbage until the next keyframe.
            waiting_for_key = true;
            Ok(false)
        } else if waiting_for_key && !codec.is_keyframe(&data) {
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
            sink.keyframe_requested();
            let _ = keyframes.request_keyframe().await;
        }
    }
    tracing::debug!(track = %track_id, ?stats, "remote video ended");
}

#[cfg(test)]
mod tests {
    use super::{CameraSettings, VideoPolicy, allocate, decode_limit};
    use estrade_media::VideoCodec;

    #[test]
    fn the_uplink_is_shared_from_the_lowest_layer_up() {
        let layers = CameraSettings {
            width: 1280,
            height: 720,
            fps: 30,
            bitrate_kbps: 1_500,
            codec: VideoCodec::Vp8,
            simulcast: true,
        }
        .layers();
        let rates: Vec<u32> = layers.iter().map(|l| l.bitrate_kbps).collect();
        assert_eq!(rates, [150, 450, 1_500]);
        let share = |kbps, wanted| allocate(&layers, &VideoPolicy { kbps, wanted });
        let all = [true; 3];
        assert_eq!(share(2_100, all), [Some(150), Some(450), Some(1_500)]);
        // The top layer with 60 % of its rate or more, else not at all.
        assert_eq!(share(1_500, all), [Some(150), Some(450), Some(900)]);
        assert_eq!(share(1_400, all), [Some(150), Some(450), None]);
        assert_eq!(share(450, all), [Some(150), Some(300), None]);
        assert_eq!(share(300, all), [Some(150), None, None]);
        // The lowest is always sent, down to a floor.
        assert_eq!(share(100, all), [Some(100), None, None]);
        assert_eq!(share(0, all), [Some(30), None, None]);
        // Layers nobody receives get nothing; the lowest wanted is the one always sent.
        assert_eq!(share(2_100, [false, true, false]), [None, Some(450), None]);
        assert_eq!(share(100, [false, false, true]), [None, None, Some(100)]);
        assert_eq!(share(2_100, [false; 3]), [None, None, None]);
    }

    #[test]
    fn a_remote_camera_decodes_up_to_a_margin_over_its_published_size() {
        assert_eq!(decode_limit((1280, 720)), (1616, 916));
        assert_eq!(decode_limit((0, 720)), (0, 0), "unknown: the hard cap");
        assert_eq!(decode_limit((u32::MAX, 2)), (u32::MAX, 18), "no overflow");
    }
}
