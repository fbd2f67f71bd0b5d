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

use crate::opus_codec::CodecError;
use crate::video::I420Frame;
use crate::video_codec::check_size;

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
        })
    }

    /// Encodes one frame into `out` (cleared first) as Annex B; returns whether it is a
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
        Ok(key)
    }
}

pub(crate) struct H264Decoder {
    inner: Decoder,
}

impl H264Decoder {
    pub fn new() -> Result<Self, CodecError> {
        let inner = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(|e| CodecError::Setup(format!("OpenH264 decoder: {e}")))?;
        Ok(Self { inner })
    }

    /// Decodes one Annex B access unit into `out` (resized if the stream's size changed).
    /// `Ok(false)`: nothing to show yet.
    pub fn decode(&mut self, data: &[u8], out: &mut I420Frame) -> Result<bool, CodecError> {
        let decoded = self
            .inner
            .decode(data)
            .map_err(|e| CodecError::Decode(format!("H.264: {e}")))?;
        let Some(picture) = decoded else {
            return Ok(false);
        };
        let (w, h) = picture.dimensions();
        if out.width() as usize != w || out.height() as usize != h {
            *out = I420Frame::new(w as u32, h as u32);
        }
        let (w, h) = (out.width() as usize, out.height() as usize);
        let (sy, su, sv) = picture.strides();
        let dst = out.as_bytes_mut();
        let (dy, rest) = dst.split_at_mut(w * h);
        let (du, dv) = rest.split_at_mut(w * h / 4);
        for (src, stride, dst, pw, ph) in [
            (picture.y(), sy, dy, w, h),
            (picture.u(), su, du, w / 2, h / 2),
            (picture.v(), sv, dv, w / 2, h / 2),
        ] {
            for row in 0..ph {
                let line = &src[row * stride..row * stride + pw];
                dst[row * pw..(row + 1) * pw].copy_from_slice(line);
            }
        }
        Ok(true)
    }
}

/// Whether an Annex B access unit holds an IDR slice (NAL type 5): decoding can start here.
pub(crate) fn is_h264_keyframe(access_unit: &[u8]) -> bool {
    nal_types(access_unit).any(|t| t == 5)
}

/// The NAL unit types of an Annex B stream, in order.
fn nal_types(stream: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        while at + 3 < stream.len() {
            let start = &stream[at..];
            let header = if start.starts_with(&[0, 0, 1]) {
                Some(3)
            } else if start.starts_with(&[0, 0, 0, 1]) {
                Some(4)
            } else {
                None
            };
            at += 1;
            if let Some(len) = header {
                at += len - 1;
                return stream.get(at).map(|b| b & 0x1f);
            }
        }
        None
    })
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
