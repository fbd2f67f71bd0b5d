//! An open camera as the engine and the preview see it. A capture thread owns the device:
//! it waits for each frame, converts it into its own I420 buffer, then swaps that buffer
//! into the shared slot (a pointer swap under a lock held for nanoseconds). The encoder
//! and the preview each copy the newest frame out when they want one: latest wins, a slow
//! reader never delays the camera, and nothing allocates per frame.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use estrade_media::{FrameConverter, I420Frame, SourceEnded, VideoSource};
use tokio::sync::{Notify, watch};

use super::{CameraBackend, CameraError, CameraFormat, CameraId, CameraRequest};

/// Frames in a row that may fail to convert (a glitch on the wire) before the camera
/// counts as broken.
const BAD_FRAMES: u32 = 30;

/// What the camera is doing, for the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraState {
    /// Closed (camera off): the device is released.
    Off,
    Running(CameraFormat),
    /// It stopped with this error (unplugged, or every frame unreadable).
    Failed {
        code: &'static str,
        message: String,
    },
}

struct Slot {
    frame: I420Frame,
    /// Frames put here so far.
    sequence: u64,
}

struct Shared {
    slot: Mutex<Slot>,
    /// Wakes the encoder's `next_frame`.
    fresh: Notify,
    state: watch::Sender<CameraState>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        // Plain data: a panic elsewhere while holding it leaves a whole frame behind.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, error: &CameraError) {
        self.state.send_replace(CameraState::Failed {
            code: error.code(),
            message: error.to_string(),
        });
        self.fresh.notify_one();
    }
}

/// The camera for the engine to publish (`VideoSource`). Created open; the engine's
/// camera off/on closes and reopens the device.
pub struct CameraSource {
    backend: Arc<dyn CameraBackend>,
    id: CameraId,
    request: CameraRequest,
    format: CameraFormat,
    shared: Arc<Shared>,
    capture: Option<Capture>,
    /// A stopped capture thread still closing its device.
    closing: Option<JoinHandle<()>>,
    seen: u64,
}

struct Capture {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl CameraSource {
    /// Opens camera `id` of `backend` at the format nearest `request`; returns once the
    /// device is open (its format known) or failed.
    pub fn open(
        backend: Arc<dyn CameraBackend>,
        id: CameraId,
        request: CameraRequest,
    ) -> Result<Self, CameraError> {
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot {
                frame: I420Frame::new(2, 2),
                sequence: 0,
            }),
            fresh: Notify::new(),
            state: watch::Sender::new(CameraState::Off),
        });
        let (capture, format) = start(&backend, &id, request, &shared)?;
        Ok(Self {
            backend,
            id,
            request,
            format,
            shared,
            capture: Some(capture),
            closing: None,
            seen: 0,
        })
    }

    /// What the camera delivers (publish the track at this size).
    pub fn format(&self) -> CameraFormat {
        self.format
    }

    pub fn id(&self) -> &CameraId {
        &self.id
    }

    pub fn state(&self) -> watch::Receiver<CameraState> {
        self.shared.state.subscribe()
    }

    /// A reader of the newest frame for the self-view (pre-join and the room's own tile).
    pub fn preview(&self) -> CameraPreview {
        CameraPreview {
            shared: self.shared.clone(),
            seen: 0,
        }
    }

    fn stop(&mut self) {
        if let Some(capture) = self.capture.take() {
            capture.stop.store(true, Ordering::Relaxed);
            // It ends after its current frame (a frame interval at most); the device
            // closes then. Not joined here: this may be an async task.
            self.closing = Some(capture.thread);
        }
        self.shared.state.send_replace(CameraState::Off);
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Opens the device on a new capture thread; waits for it to be open.
fn start(
    backend: &Arc<dyn CameraBackend>,
    id: &CameraId,
    request: CameraRequest,
    shared: &Arc<Shared>,
) -> Result<(Capture, CameraFormat), CameraError> {
    let stop = Arc::new(AtomicBool::new(false));
    let (opened_tx, opened) = std::sync::mpsc::channel();
    let (backend, id, shared, stopped) =
        (backend.clone(), id.clone(), shared.clone(), stop.clone());
    let thread = std::thread::Builder::new()
        .name("estrade-camera".into())
        .spawn(move || capture(&*backend, &id, request, &shared, &stopped, opened_tx))
        .map_err(CameraError::Thread)?;
    let format = opened.recv().map_err(|_| CameraError::Lost {
        camera: CameraId("?".into()),
        reason: "the camera thread ended while opening".into(),
    })??;
    Ok((Capture { stop, thread }, format))
}

fn capture(
    backend: &dyn CameraBackend,
    id: &CameraId,
    request: CameraRequest,
    shared: &Shared,
    stop: &AtomicBool,
    opened: std::sync::mpsc::Sender<Result<CameraFormat, CameraError>>,
) {
    let mut device = match backend.open(id, request) {
        Ok(device) => device,
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    let format = device.format();
    shared.state.send_replace(CameraState::Running(format));
    let _ = opened.send(Ok(format));
    let mut converter = FrameConverter::new();
    let mut local = I420Frame::new(format.width, format.height);
    let mut bad = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let mut converted = Ok(());
        let next = device.next_frame(&mut |bytes| {
            converted =
                converter.convert(format.pixel, format.width, format.height, bytes, &mut local);
        });
        if let Err(e) = next {
            shared.fail(&e);
            return;
        }
        if let Err(e) = converted {
            bad += 1;
            if bad >= BAD_FRAMES {
                shared.fail(&CameraError::Convert(e));
                return;
            }
            continue;
        }
        bad = 0;
        {
            let mut slot = shared.lock();
            std::mem::swap(&mut slot.frame, &mut local);
            slot.sequence += 1;
        }
        shared.fresh.notify_one();
    }
}

impl VideoSource for CameraSource {
    async fn next_frame(&mut self, frame: &mut I420Frame) -> Result<(), SourceEnded> {
        loop {
            if let CameraState::Failed { message, .. } = &*self.shared.state.borrow() {
                return Err(SourceEnded(message.clone()));
            }
            {
                let slot = self.shared.lock();
                if slot.sequence > self.seen && self.capture.is_some() {
                    self.seen = slot.sequence;
                    frame.copy_from(&slot.frame);
                    return Ok(());
                }
            }
            self.shared.fresh.notified().await;
        }
    }

    /// Camera off closes the device (its light goes off); on opens it again.
    fn set_active(&mut self, active: bool) {
        match (active, self.capture.is_some()) {
            (false, true) => self.stop(),
            (true, false) => {
                // The device must be closed before it opens again (V4L2 says busy).
                if let Some(closing) = self.closing.take() {
                    let _ = closing.join();
                }
                self.open_again();
            }
            _ => {}
        }
    }
}

impl CameraSource {
    fn open_again(&mut self) {
        match start(&self.backend, &self.id, self.request, &self.shared) {
            Ok((capture, format)) => {
                self.format = format;
                self.capture = Some(capture);
            }
            Err(e) => self.shared.fail(&e),
        }
    }
}

/// The newest camera frame, for drawing the self-view.
pub struct CameraPreview {
    shared: Arc<Shared>,
    seen: u64,
}

impl CameraPreview {
    /// Copies the newest frame into `frame` if there is one this preview has not shown.
    pub fn latest(&mut self, frame: &mut I420Frame) -> bool {
        let slot = self.shared.lock();
        if slot.sequence <= self.seen {
            return false;
        }
        self.seen = slot.sequence;
        frame.copy_from(&slot.frame);
        true
    }
}
