//! One face for the video codecs, so the engine picks VP8 or H.264 per track (a remote
//! track's codec is whatever its publisher chose).

use crate::h264::{H264Decoder, H264Encoder, is_h264_keyframe};
use crate::opus_codec::CodecError;
use crate::video::I420Frame;
use crate::vp8::{Vp8Decoder, Vp8Encoder, is_vp8_keyframe};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    Vp8,
    /// Constrained baseline, packetization-mode 1.
    H264,
}

impl VideoCodec {
    /// Whether decoding can start at this frame.
    pub fn is_keyframe(self, frame: &[u8]) -> bool {
        match self {
            Self::Vp8 => is_vp8_keyframe(frame),
            Self::H264 => is_h264_keyframe(frame),
        }
    }
}

pub enum VideoEncoder {
    Vp8(Vp8Encoder),
    /// Boxed: OpenH264's state inline is kilobytes; made once per layer.
    H264(Box<H264Encoder>),
}

impl VideoEncoder {
    pub fn new(
        codec: VideoCodec,
        width: u32,
        height: u32,
        fps: u32,
        bitrate_kbps: u32,
    ) -> Result<Self, CodecError> {
        Ok(match codec {
            VideoCodec::Vp8 => Self::Vp8(Vp8Encoder::new(width, height, fps, bitrate_kbps)?),
            VideoCodec::H264 => Self::H264(Box::new(H264Encoder::new(
                width,
                height,
                fps,
                bitrate_kbps,
            )?)),
        })
    }

    /// Encodes one frame into `out` (cleared first); returns whether it is a keyframe.
    /// An empty `out` means the encoder produced nothing for this frame.
    pub fn encode(
        &mut self,
        frame: &I420Frame,
        keyframe: bool,
        out: &mut Vec<u8>,
    ) -> Result<bool, CodecError> {
        match self {
            Self::Vp8(e) => e.encode(frame, keyframe, out),
            Self::H264(e) => e.encode(frame, keyframe, out),
        }
    }
}

pub enum VideoDecoder {
    Vp8(Vp8Decoder),
    H264(H264Decoder),
}

impl VideoDecoder {
    pub fn new(codec: VideoCodec) -> Result<Self, CodecError> {
        Ok(match codec {
            VideoCodec::Vp8 => Self::Vp8(Vp8Decoder::new()?),
            VideoCodec::H264 => Self::H264(H264Decoder::new()?),
        })
    }

    /// Decodes one frame into `out` (resized to the stream's size). `Ok(false)`: nothing to
    /// show yet.
    pub fn decode(&mut self, data: &[u8], out: &mut I420Frame) -> Result<bool, CodecError> {
        match self {
            Self::Vp8(d) => d.decode(data, out),
            Self::H264(d) => d.decode(data, out),
        }
    }
}
