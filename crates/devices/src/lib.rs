//! Estrade's native devices, independent of Tauri and of the network.
//!
//! Audio ([`AudioDevices`]): the microphone and the speakers through cpal (PulseAudio on
//! Linux, CoreAudio, WASAPI), with WebRTC's processing (echo cancellation against exactly
//! what the speakers were given, noise suppression, gain control) on a thread of its own;
//! [`MicrophoneSource`] is what the engine publishes and [`AudioDevices::output`] is where
//! it plays remote microphones. Devices are listed with stable ids, watched for changes,
//! switched mid-call, and replaced by the system default when unplugged.
//!
//! Cameras ([`camera`]): listed and opened through a backend trait (nokhwa today),
//! converted to I420 for the encoder and a preview; off releases the device.
//!
//! Synthetic devices (a tone, a silent output, a test pattern) are listed beside real ones.

mod audio_devices;
pub mod camera;
mod capture;
mod device;
mod microphone;
mod playout;
#[cfg(target_os = "linux")]
mod pulse_record;
pub mod sounds;
mod stream_config;
mod watch;

pub use audio_devices::{AudioDevices, DeviceEvent, DeviceEvents, DeviceStats, SwitchReason};
pub use capture::mono;
pub use device::{AudioDeviceId, AudioDeviceInfo, DeviceChoice, DeviceError, Direction};
pub use estrade_media::{AudioLevel, ProcessingConfig, ProcessingStats};
pub use microphone::MicrophoneSource;
