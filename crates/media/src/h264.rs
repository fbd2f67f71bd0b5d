//! H.264 constrained baseline with OpenH264 (the `openh264` crate builds it from source,
//! with nasm for its assembly), set up as WebRTC senders do: bitrate rate control (frames
//! may be skipped to hold it; OpenH264 cannot hold a bitrate otherwise), no periodic IDR (keyframes come on request, PLI), SPS/PPS in front of every IDR so a
//! receiver can start at any keyframe. Output is Annex B, which the RTP packetizer splits.

use openh264::decoder::{Decoder, DecoderConfig};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Level,
    Profile, RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use openh264::{OpenH264API, Timestamp};
use openh264_sys2::{ENCODER_OPTION_BITRATE, SBitrateInfo, SPATIAL_LAYER_0, SPATIAL_LAYER_ALL};
use std::os::raw::c_int;
use std::ptr::addr_of_mut;

use crate::h264_sps::coded_size;
use crate::opus_codec::CodecError;
use crate::video::I420Frame;
use crate::video_codec::{SizeLimit, check_size};

/// Lets OpenH264 read one of our frames without a copy.
struct Planes<'a>(&'a I420Frame);

impl YUVSource for Planes<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.0.width() as usize, self.0.height() as usize)
    }

    fn strides(&self) -> (usize, usize, usize) {
        let w = self.0.width() as usize;
        (w, w / 2, w / 2)
    }

    fn y(&self) -> &[u8] {
        self.0.y()
    }

    fn u(&self) -> &[u8] {
        let luma = self.0.y().len();
        &self.0.as_bytes()[luma..luma + luma / 4]
    }

    fn v(&self) -> &[u8] {
        let luma = self.0.y().len();
        &self.0.as_bytes()[luma + luma / 4..]
    }
}

pub(crate) struct H264Encoder {
    inner: Encoder,
    width: u32,
    height: u32,
    /// Frames given so far: their timestamps drive OpenH264's rate control.
    frames: u64,
    fps: u64,
    /// A rate to apply: OpenH264 initialises on the first frame and refuses options before.
    pending_kbps: Option<u32>,
}

impl H264Encoder {
    pub fn new(width: u32, height: u32, fps: u32, bitrate_kbps: u32) -> Result<Self, CodecError> {
        // Level 3.1 (the `1f` of profile-level-id 42e01f) holds 720p30.
        let config = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(bitrate_kbps.saturating_mul(1000)))
            .max_frame_rate(FrameRate::from_hz(fps.max(1) as f32))
            .skip_frames(true)
            .profile(Profile::Baseline)
            .level(Level::Level_3_1)
            .complexity(Complexity::Low)
            .intra_frame_period(IntraFramePeriod::from_num_frames(0))
            .scene_change_detect(false)
            .background_detection(false)
            .num_threads(1);
        let inner = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| CodecError::Setup(format!("OpenH264 encoder: {e}")))?;
        Ok(Self {
            inner,
            width,
            height,
            frames: 0,
            fps: u64::from(fps.max(1)),
            pending_kbps: None,
        })
    }

    /// Encodes one frame into `out` (cleared first) as Annex B; returns whether it is a
    /// The rate from the next frame on (the uplink estimate changed).
    pub fn set_bitrate(&mut self, kbps: u32) {
        self.pending_kbps = Some(kbps);
    }

    fn apply_bitrate(&mut self) -> Result<(), CodecError> {
        let Some(kbps) = self.pending_kbps.take() else {
            return Ok(());
        };
        let bps = c_int::try_from(u64::from(kbps) * 1000).unwrap_or(c_int::MAX);
        for layer in [SPATIAL_LAYER_ALL, SPATIAL_LAYER_0] {
            let mut info = SBitrateInfo {
                iLayer: layer,
                iBitrate: bps,
            };
            // SAFETY: the encoder is initialised (a frame went through it); OpenH264
            // reads the struct during the call only.
            let rc = unsafe {
                self.inner
                    .raw_api()
                    .set_option(ENCODER_OPTION_BITRATE, addr_of_mut!(info).cast())
            };
            if rc != 0 {
                return Err(CodecError::Setup(format!("OpenH264 bitrate: error {rc}")));
            }
        }
        Ok(())
    }

    /// keyframe (IDR). An empty `out` means the encoder produced nothing for this frame.
    pub fn encode(
        &mut self,
        frame: &I420Frame,
        keyframe: bool,
        out: &mut Vec<u8>,
    ) -> Result<bool, CodecError> {
        // OpenH264 would silently re-initialise at the new size (and send an IDR).
        check_size("H.264", frame, self.width, self.height)?;
        out.clear();
        if keyframe {
            self.inner.force_intra_frame();
        }
        let at = Timestamp::from_millis(self.frames * 1000 / self.fps);
        self.frames += 1;
        let encoded = self
            .inner
            .encode_at(&Planes(frame), at)
            .map_err(|e| CodecError::Encode(format!("H.264: {e}")))?;
        let key = matches!(encoded.frame_type(), FrameType::IDR);
        if !matches!(encoded.frame_type(), FrameType::Skip | FrameType::Invalid) {
            encoded.write_vec(out);
        }
        self.apply_bitrate()?;
        Ok(key)
    }
}

pub(crate) struct H264Decoder {
    inner: Decoder,
    /// In whole macroblocks, as sequence parameter sets announce sizes.
    limit: SizeLimit,
}

impl H264Decoder {
    pub fn new() -> Result<Self, CodecError> {
        let inner = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(|e| CodecError::Setup(format!("OpenH264 decoder: {e}")))?;
        Ok(Self {
            inner,
            limit: SizeLimit::HARD,
        })
    }

    pub fn set_limit(&mut self, limit: SizeLimit) {
        self.limit = limit.whole_macroblocks();
    }

    /// Decodes one Annex B access unit into `out` (resized if the stream's size changed).
    /// `Ok(false)`: nothing to show yet.
    pub fn decode(&mut self, data: &[u8], out: &mut I420Frame) -> Result<bool, CodecError> {
        check_parameter_sets(data, self.limit)?;
        let decoded = self
            .inner
            .decode(data)
            .map_err(|e| CodecError::Decode(format!("H.264: {e}")))?;
        let Some(picture) = decoded else {
            return Ok(false);
        };
        let (w, h) = picture.dimensions();
        let (Ok(w), Ok(h)) = (u32::try_from(w), u32::try_from(h)) else {
            return Err(CodecError::Decode(
                "H.264: picture size out of range".into(),
            ));
        };
        // OpenH264 has its buffers by now; this holds a limit lowered mid-stream.
        self.limit.check(w, h)?;
        let (sy, su, sv) = picture.strides();
        out.copy_from_planes(
            w,
            h,
            [(picture.y(), sy), (picture.u(), su), (picture.v(), sv)],
        );
        Ok(true)
    }
}

/// Refuses an access unit holding a sequence parameter set (or an SVC subset one, which
/// OpenH264 also takes) for a picture over `limit`, before OpenH264 allocates its frames
/// at that size (its own ceiling is level 5.2's 36864 macroblocks, some 14 MB a frame,
/// times the reference frames). One it cannot read is refused too: what OpenH264 would
/// make of it is not known.
fn check_parameter_sets(access_unit: &[u8], limit: SizeLimit) -> Result<(), CodecError> {
    for nal in nal_units(access_unit) {
        let Some((&header, sps)) = nal.split_first() else {
            continue;
        };
        if !matches!(header & 0x1f, 7 | 15) {
            continue;
        }
        let (w, h) = coded_size(sps).ok_or_else(|| {
            CodecError::Decode("H.264: a sequence parameter set we cannot read".into())
        })?;
        limit.check(w, h)?;
    }
    Ok(())
}

/// Whether an Annex B access unit holds an IDR slice (NAL type 5): decoding can start here.
pub(crate) fn is_h264_keyframe(access_unit: &[u8]) -> bool {
    nal_types(access_unit).any(|t| t == 5)
}

/// The NAL unit types of an Annex B stream, in order.
fn nal_types(stream: &[u8]) -> impl Iterator<Item = u8> + '_ {
    nal_units(stream).filter_map(|nal| nal.first().map(|b| b & 0x1f))
}

/// The NAL units of an Annex B stream, each from its header byte to the next start code
/// (00 00 01; a 4-byte start code leaves its leading zero on the unit before, as trailing
/// zeros). Bytes before the first start code belong to no unit.
fn nal_units(stream: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let mut rest = start_code(stream).map(|at| &stream[at + 3..]);
    std::iter::from_fn(move || {
        let unit = rest?;
        let end = start_code(unit);
        rest = end.map(|at| &unit[at + 3..]);
        Some(&unit[..end.unwrap_or(unit.len())])
    })
}

/// Where the first 00 00 01 starts (the three bytes are within `stream`).
fn start_code(stream: &[u8]) -> Option<usize> {
    stream.windows(3).position(|w| w == [0, 0, 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    // Round trips, sizes and timings: video_codec.rs tests both codecs the same way.
    #[test]
    fn garbage_does_not_panic_the_decoder() {
        let mut dec = H264Decoder::new().unwrap();
        let mut out = I420Frame::new(2, 2);
        // A P slice with no SPS/PPS before it, then random bytes: errors or nothing, no panic.
        for junk in [
            &[0u8, 0, 0, 1, 0x41, 0x9a, 0x00, 0x11][..],
            &[0xff; 64][..],
            &[][..],
        ] {
            assert!(!matches!(dec.decode(junk, &mut out), Ok(true)));
        }
    }

    #[test]
    fn nal_types_are_found_behind_both_start_codes() {
        let stream = [0, 0, 0, 1, 0x67, 9, 0, 0, 1, 0x68, 9, 0, 0, 1, 0x65, 1, 2];
        assert_eq!(nal_types(&stream).collect::<Vec<_>>(), vec![7, 8, 5]);
        assert!(is_h264_keyframe(&stream));
        assert!(!is_h264_keyframe(&[0, 0, 0, 1, 0x41, 1]));
    }
}
