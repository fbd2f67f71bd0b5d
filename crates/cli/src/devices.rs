//! The CLI's real devices: `--list-devices`, the microphone and speaker through
//! `estrade-devices` (with echo cancellation, noise suppression and gain control unless
//! turned off), a device camera, and what their events look like as JSON lines.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use estrade_devices::camera::{
    self, CameraBackend, CameraId, CameraRequest, CameraSource, NativeCameras, SyntheticCamera,
};
use estrade_devices::{
    AudioDeviceInfo, AudioDevices, DeviceChoice, DeviceEvent, DeviceEvents, Direction,
    ProcessingConfig,
};
use serde_json::{Value, json};

/// What the device flags asked for.
pub struct DeviceArgs {
    pub mic: Option<String>,
    pub speaker: Option<String>,
    pub camera: Option<String>,
    pub processing: ProcessingConfig,
}

impl DeviceArgs {
    pub fn any(&self) -> bool {
        self.mic.is_some() || self.speaker.is_some() || self.camera.is_some()
    }
}

/// The devices a participant opened.
pub struct Local {
    pub audio: Option<AudioDevices>,
    pub events: Option<DeviceEvents>,
    pub camera: Option<CameraSource>,
}

fn info(d: &AudioDeviceInfo) -> Value {
    json!({"id": d.id.as_str(), "name": d.name, "default": d.is_default})
}

/// `--list-devices`: every microphone, speaker and camera, as one JSON object.
pub async fn list() -> anyhow::Result<Value> {
    let (audio, _events) = AudioDevices::start(ProcessingConfig::NONE)?;
    let all = audio.list().await?;
    let of = |direction| {
        all.iter()
            .filter(|d| d.direction == direction)
            .map(info)
            .collect::<Vec<_>>()
    };
    let cameras = camera::list_all(&[&NativeCameras, &SyntheticCamera])?;
    Ok(json!({
        "microphones": of(Direction::Input),
        "speakers": of(Direction::Output),
        "cameras": cameras.iter().map(|c| json!({"id": c.id.as_str(), "name": c.name, "description": c.description})).collect::<Vec<_>>(),
    }))
}

/// Opens what `args` asks for.
pub async fn open(args: &DeviceArgs) -> anyhow::Result<Local> {
    let (mut audio, mut events) = (None, None);
    if args.mic.is_some() || args.speaker.is_some() {
        let (devices, device_events) = AudioDevices::start(args.processing)?;
        if let Some(speaker) = &args.speaker {
            devices
                .use_speaker(Some(DeviceChoice::parse(speaker)))
                .await
                .with_context(|| format!("--speaker {speaker}"))?;
        }
        if let Some(mic) = &args.mic {
            devices
                .use_microphone(Some(DeviceChoice::parse(mic)))
                .await
                .with_context(|| format!("--mic {mic}"))?;
        }
        (audio, events) = (Some(devices), Some(device_events));
    }
    let camera = match &args.camera {
        None => None,
        Some(choice) => Some(open_camera(choice)?),
    };
    Ok(Local {
        audio,
        events,
        camera,
    })
}

/// `default` is the first real camera; `synthetic:pattern` the test pattern.
fn open_camera(choice: &str) -> anyhow::Result<CameraSource> {
    let backend: Arc<dyn CameraBackend> = if choice == CameraId::SYNTHETIC {
        Arc::new(SyntheticCamera)
    } else {
        Arc::new(NativeCameras)
    };
    let id = if choice == "default" {
        match NativeCameras.list()?.into_iter().next() {
            Some(first) => first.id,
            None => bail!(
                "--camera-device default: no camera found (use {} for the test pattern)",
                CameraId::SYNTHETIC
            ),
        }
    } else {
        CameraId(choice.to_owned())
    };
    CameraSource::open(backend, id, CameraRequest::default())
        .with_context(|| format!("--camera-device {choice}"))
}

pub fn event(e: &DeviceEvent) -> Value {
    let direction = |d: &Direction| match d {
        Direction::Input => "microphone",
        Direction::Output => "speaker",
    };
    match e {
        DeviceEvent::DevicesChanged { added, removed, .. } => json!({
            "event": "devices_changed",
            "added": added.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            "removed": removed.iter().map(|d| d.id.as_str()).collect::<Vec<_>>()}),
        DeviceEvent::Switched {
            direction: d,
            device,
            reason,
        } => json!({
            "event": "device_switched", "kind": direction(d), "device": device.id.as_str(),
            "reason": format!("{reason:?}")}),
        DeviceEvent::Lost {
            direction: d,
            device,
            error,
        } => {
            json!({"event": "device_lost", "kind": direction(d), "device": device.as_str(), "error": error})
        }
        DeviceEvent::Missed { count } => json!({"event": "device_events_missed", "count": count}),
        other => json!({"event": "device_other", "debug": format!("{other:?}")}),
    }
}
