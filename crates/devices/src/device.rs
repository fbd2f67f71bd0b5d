//! Audio devices as the app names them: a stable id (the host's own, e.g.
//! `pulseaudio:alsa_input.usb-…`), a human name, which way it goes, whether it is the
//! system default. Synthetic devices (a tone for a microphone, a silent output) are listed
//! too, so everything runs on a machine without sound hardware.

use cpal::traits::{DeviceTrait as _, HostTrait as _};

/// A device's stable id: `host:name` as the host reports it (survives unplugging and
/// replugging the same device), or `synthetic:…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AudioDeviceId(pub String);

impl AudioDeviceId {
    /// The synthetic microphone: tone bursts (440 Hz, 100 ms every 500 ms).
    pub const SYNTHETIC_TONE: &'static str = "synthetic:tone";
    /// The synthetic speaker: plays nowhere, at real time.
    pub const SYNTHETIC_SILENT: &'static str = "synthetic:silent";

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_synthetic(&self) -> bool {
        self.0.starts_with("synthetic:")
    }
}

impl std::fmt::Display for AudioDeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Input,
    Output,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioDeviceInfo {
    pub id: AudioDeviceId,
    /// What the system calls it ("Built-in Microphone", "USB Headset").
    pub name: String,
    pub direction: Direction,
    /// The system's default for its direction.
    pub is_default: bool,
}

/// Which device to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The system default, followed when it changes.
    Default,
    Id(AudioDeviceId),
}

impl DeviceChoice {
    /// `default` or an id, as a user types it.
    pub fn parse(text: &str) -> Self {
        match text {
            "" | "default" => DeviceChoice::Default,
            id => DeviceChoice::Id(AudioDeviceId(id.to_owned())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    #[error("no audio system is available")]
    NoHost(#[source] cpal::Error),
    #[error("the audio devices could not be listed")]
    List(#[source] cpal::Error),
    #[error("no such audio device: {0}")]
    NotFound(AudioDeviceId),
    #[error("there is no {0:?} device")]
    NoDefault(Direction),
    #[error("{device} could not be opened")]
    Open {
        device: AudioDeviceId,
        #[source]
        source: cpal::Error,
    },
    #[error("{device} has no usable format ({format:?})")]
    UnsupportedFormat {
        device: AudioDeviceId,
        format: cpal::SampleFormat,
    },
    #[error("access to {0} was denied (check the system's privacy settings)")]
    PermissionDenied(AudioDeviceId),
    #[error("{device} could not be opened through PulseAudio")]
    Pulse {
        device: AudioDeviceId,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("a thread for audio could not be started")]
    Thread(#[source] std::io::Error),
    #[error("the audio resampler could not be set up")]
    Resampler(#[source] estrade_media::ResamplerError),
    #[error("the audio device thread has stopped")]
    Stopped,
}

impl DeviceError {
    /// A stable code for the UI to branch on.
    pub fn code(&self) -> &'static str {
        match self {
            DeviceError::NoHost(_) => "audio_unavailable",
            DeviceError::List(_) => "audio_list_failed",
            DeviceError::NotFound(_) => "audio_device_not_found",
            DeviceError::NoDefault(_) => "audio_no_device",
            DeviceError::Open { .. } | DeviceError::Pulse { .. } => "audio_open_failed",
            DeviceError::UnsupportedFormat { .. } => "audio_unsupported_format",
            DeviceError::PermissionDenied(_) => "audio_permission_denied",
            DeviceError::Thread(_) | DeviceError::Resampler(_) | DeviceError::Stopped => {
                "audio_internal"
            }
        }
    }
}

/// The system's audio: PulseAudio on Linux (PipeWire speaks it too) when a server answers,
/// else ALSA; the platform's default host elsewhere (CoreAudio, WASAPI).
pub(crate) fn host() -> Result<cpal::Host, DeviceError> {
    #[cfg(target_os = "linux")]
    match cpal::host_from_id(cpal::HostId::PulseAudio) {
        Ok(host) => return Ok(host),
        // Said, not silent: on ALSA the device names are ALSA's and hot-plug is blind.
        Err(e) => tracing::warn!(error = %e, "PulseAudio unavailable, using ALSA"),
    }
    #[cfg(target_os = "linux")]
    return cpal::host_from_id(cpal::HostId::Alsa).map_err(DeviceError::NoHost);
    #[cfg(not(target_os = "linux"))]
    Ok(cpal::default_host())
}

pub(crate) fn id_of(device: &cpal::Device) -> Option<AudioDeviceId> {
    device.id().ok().map(|id| AudioDeviceId(id.to_string()))
}

/// A monitor (what a sink plays, offered as an input by PulseAudio) is no microphone.
fn is_monitor(id: &AudioDeviceId) -> bool {
    id.0.starts_with("pulseaudio:") && id.0.ends_with(".monitor")
}

/// Every device of the host, synthetic ones last.
pub(crate) fn list(host: &cpal::Host) -> Result<Vec<AudioDeviceInfo>, DeviceError> {
    let mut out = Vec::new();
    for direction in [Direction::Input, Direction::Output] {
        let (devices, default) = match direction {
            Direction::Input => (
                host.input_devices().map_err(DeviceError::List)?,
                host.default_input_device(),
            ),
            Direction::Output => (
                host.output_devices().map_err(DeviceError::List)?,
                host.default_output_device(),
            ),
        };
        let default = default.as_ref().and_then(id_of);
        for device in devices {
            let Some(id) = id_of(&device) else { continue };
            if is_monitor(&id) {
                continue;
            }
            let name = device
                .description()
                .map(|d| d.name().to_owned())
                .unwrap_or_else(|_| id.0.clone());
            out.push(AudioDeviceInfo {
                is_default: default.as_ref() == Some(&id),
                id,
                name,
                direction,
            });
        }
    }
    out.extend(list_synthetic());
    Ok(out)
}

fn list_synthetic() -> [AudioDeviceInfo; 2] {
    [
        AudioDeviceInfo {
            id: AudioDeviceId(AudioDeviceId::SYNTHETIC_TONE.into()),
            name: "Synthetic tone (Estrade)".into(),
            direction: Direction::Input,
            is_default: false,
        },
        AudioDeviceInfo {
            id: AudioDeviceId(AudioDeviceId::SYNTHETIC_SILENT.into()),
            name: "Silent output (Estrade)".into(),
            direction: Direction::Output,
            is_default: false,
        },
    ]
}

/// The device `choice` names, as the host lists it now.
pub(crate) fn resolve(
    host: &cpal::Host,
    choice: &DeviceChoice,
    direction: Direction,
) -> Result<(AudioDeviceInfo, Option<cpal::Device>), DeviceError> {
    if let DeviceChoice::Id(id) = choice
        && id.is_synthetic()
    {
        let info = list_synthetic()
            .into_iter()
            .find(|d| d.direction == direction && &d.id == id)
            .ok_or_else(|| DeviceError::NotFound(id.clone()))?;
        return Ok((info, None));
    }
    let default = match direction {
        Direction::Input => host.default_input_device(),
        Direction::Output => host.default_output_device(),
    }
    .as_ref()
    .and_then(id_of);
    let wanted = match choice {
        DeviceChoice::Default => default.clone().ok_or(DeviceError::NoDefault(direction))?,
        DeviceChoice::Id(id) => id.clone(),
    };
    let devices = match direction {
        Direction::Input => host.input_devices(),
        Direction::Output => host.output_devices(),
    }
    .map_err(DeviceError::List)?;
    // Fetched anew each time: a `Device` keeps the stream format it was listed with.
    for device in devices {
        if id_of(&device).as_ref() == Some(&wanted) {
            let name = device
                .description()
                .map(|d| d.name().to_owned())
                .unwrap_or_else(|_| wanted.0.clone());
            let info = AudioDeviceInfo {
                is_default: default.as_ref() == Some(&wanted),
                id: wanted,
                name,
                direction,
            };
            return Ok((info, Some(device)));
        }
    }
    Err(DeviceError::NotFound(wanted))
}
