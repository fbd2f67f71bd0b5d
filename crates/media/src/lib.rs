//! Estrade's media pieces, independent of the network: the source and sink traits,
//! synthetic sources whose content carries time, the audio jitter buffer, the Opus, VP8 and H.264 codecs,
//! and the audio chain a device needs: resampling, the playout mix, microphone processing (echo
//! cancellation, noise suppression, gain control) and the level meter.

pub mod audio;
pub mod clock;
mod h264;
mod h264_sps;
pub mod jitter;
pub mod level;
pub mod mix;
mod opus_codec;
pub mod pixel;
pub mod playout;
pub mod processing;
pub mod resample;
pub mod synthetic;
pub mod synthetic_video;
pub mod uplink;
pub mod video;
mod video_codec;
mod vp8;

pub use audio::{AudioFrame, AudioSource, FRAME_SAMPLES, SAMPLE_RATE, SourceEnded};
pub use jitter::{JitterBuffer, JitterStats, Playout};
pub use level::{AudioLevel, LevelMeter};
pub use mix::{MixFrame, Mixer, MixerFull, MixerInput, mixer};
pub use opus_codec::{CodecError, MAX_PACKET, OpusDecoder, OpusEncoder};
pub use pixel::{ConvertError, FrameConverter, PixelFormat};
pub use playout::{PacketFeed, PlayoutStats, Pulled, QueueFull, RemoteAudio, remote_audio};
pub use processing::{
    AudioProcessor, PROCESSING_FRAME, ProcessingConfig, ProcessingFrame, ProcessingStats,
    SonoraProcessor,
};
pub use resample::{MonoResampler, ResamplerError};
pub use uplink::{RateChange, UplinkRate, UplinkReport};
pub use video::{I420Frame, VideoSink, VideoSource};
pub use video_codec::{
    MAX_DECODE_HEIGHT, MAX_DECODE_WIDTH, VideoCodec, VideoDecoder, VideoEncoder,
};
