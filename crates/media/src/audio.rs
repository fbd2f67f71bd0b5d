//! Audio as the engine moves it: 20 ms of mono 48 kHz signed 16-bit PCM per frame (what
//! Opus encodes best for speech and what every LiveKit SDK sends).

pub const SAMPLE_RATE: u32 = 48_000;
pub const FRAME_SAMPLES: usize = 960;
pub type AudioFrame = [i16; FRAME_SAMPLES];

/// The source ended (device unplugged, synthetic source stopped).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("the audio source ended: {0}")]
pub struct SourceEnded(pub String);

/// Where a published microphone's audio comes from: a device (media issue) or synthetic.
pub trait AudioSource: Send + 'static {
    /// Waits for the next 20 ms and writes it to `out`.
    fn next_frame(
        &mut self,
        out: &mut AudioFrame,
    ) -> impl std::future::Future<Output = Result<(), SourceEnded>> + Send;

    /// Whether the frame last returned held a voice, if the source measured it (a device's
    /// processing chain does; then the engine need not measure again).
    fn voice_activity(&self) -> Option<bool> {
        None
    }
}
