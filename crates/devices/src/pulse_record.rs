//! PulseAudio microphones, opened with PulseAudio's own protocol (the `pulseaudio` crate,
//! which cpal's PulseAudio host is built on) rather than through cpal.
//!
//! Why: for a 10 ms buffer cpal asks the server for a record buffer of at most one 10 ms
//! fragment, and the server throws away whatever the client has not read within that
//! time. On a busy machine a read 10 ms late is common; each one cost 10–20 ms of
//! microphone audio (measured here as the microphone's shortfall: jumps of ~20 ms under
//! load), a click for the listeners and a jump in the echo's delay that threw the echo
//! canceller off for seconds. Here the fragments stay 10 ms (the same latency) and the
//! buffer is the server's maximum: a late read is caught up, nothing is lost.
//!
//! The stream is mono at the device's own rate: the server downmixes (exactly, for the
//! layouts it knows), and the processing thread resamples to 48 kHz as for any device.

use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::Thread;
use std::time::Duration;

use futures::executor::block_on;
use pulseaudio::protocol;

use crate::capture::{CaptureCounters, OPEN_TIMEOUT};
use crate::device::{AudioDeviceInfo, DeviceError};

/// How often the server is asked for the stream's latency (and whether it still exists).
const TIMING_EVERY: Duration = Duration::from_millis(100);

/// Keeps the stream open; dropping it deletes the stream on the server.
pub(crate) struct PulseRecord {
    stop: Arc<AtomicBool>,
    stream: Option<pulseaudio::RecordStream>,
    _client: pulseaudio::Client,
}

impl Drop for PulseRecord {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(stream) = self.stream.take() {
            // The server closes it with the connection anyway; deleting it is prompt.
            let _ = block_on(stream.delete());
        }
    }
}

/// What `open` failed at: the server, the source, or the stream.
fn open_error(
    info: &AudioDeviceInfo,
    error: impl std::error::Error + Send + Sync + 'static,
) -> DeviceError {
    DeviceError::Pulse {
        device: info.id.clone(),
        source: Box::new(error),
    }
}

/// The server did not answer within [`OPEN_TIMEOUT`].
#[derive(Debug, thiserror::Error)]
#[error("the PulseAudio server did not answer within {0:?}")]
struct NoAnswer(Duration);

/// Opens PulseAudio source `name` and starts it: mono f32 into `producer`, `wake` unparked
/// after each fragment. `on_lost` is called once, on a thread of ours, if the source goes
/// away (unplugged, its module unloaded) or the server does. Returns the stream's rate.
///
/// The protocol's requests have no deadline of their own: a server that hangs must not
/// hang the devices' control thread, so the opening runs on a thread of its own and is
/// given up after [`OPEN_TIMEOUT`] (as cpal's streams are).
pub(crate) fn open(
    info: &AudioDeviceInfo,
    name: &str,
    producer: rtrb::Producer<f32>,
    wake: Thread,
    counters: Arc<CaptureCounters>,
    on_lost: impl FnOnce(String) + Send + 'static,
) -> Result<(u32, PulseRecord), DeviceError> {
    let (done, answer) = crossbeam_channel::bounded(1);
    let (opening, source) = (info.clone(), name.to_owned());
    std::thread::Builder::new()
        .name("estrade-pulse-open".into())
        .spawn(move || {
            let _ = done.send(open_now(
                &opening, &source, producer, wake, counters, on_lost,
            ));
        })
        .map_err(DeviceError::Thread)?;
    answer
        .recv_timeout(OPEN_TIMEOUT)
        .unwrap_or_else(|_| Err(open_error(info, NoAnswer(OPEN_TIMEOUT))))
}

fn open_now(
    info: &AudioDeviceInfo,
    name: &str,
    mut producer: rtrb::Producer<f32>,
    wake: Thread,
    counters: Arc<CaptureCounters>,
    on_lost: impl FnOnce(String) + Send + 'static,
) -> Result<(u32, PulseRecord), DeviceError> {
    let client = pulseaudio::Client::from_env(c"Estrade").map_err(|e| open_error(info, e))?;
    let c_name = CString::new(name).map_err(|e| open_error(info, e))?;
    let source = block_on(client.source_info_by_name(c_name)).map_err(|e| open_error(info, e))?;
    let rate = source.sample_spec.sample_rate.max(1);
    let fragment = rate / 100 * 4;
    let params = protocol::RecordStreamParams {
        sample_spec: protocol::SampleSpec {
            format: protocol::SampleFormat::Float32Le,
            channels: 1,
            sample_rate: rate,
        },
        channel_map: protocol::ChannelMap::mono(),
        source_index: Some(source.index),
        buffer_attr: protocol::stream::BufferAttr {
            // The server's maximum: nothing is dropped when we read late.
            max_length: u32::MAX,
            fragment_size: fragment,
            ..Default::default()
        },
        flags: protocol::stream::StreamFlags {
            // The source runs at the latency our fragments ask for.
            adjust_latency: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let callback_counters = counters.clone();
    // The reader thread's callback: bytes → samples → ring. No allocation, no lock.
    let callback = move |data: &[u8]| {
        let samples = data.len() / 4;
        let room = samples.min(producer.slots());
        if room < samples {
            callback_counters
                .overflowed
                .fetch_add((samples - room) as u64, Ordering::Relaxed);
        }
        if let Ok(chunk) = producer.write_chunk_uninit(room) {
            chunk.fill_from_iter(
                data.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
        wake.unpark();
    };
    let stream =
        block_on(client.create_record_stream(params, callback)).map_err(|e| open_error(info, e))?;
    block_on(stream.started()).map_err(|e| open_error(info, e))?;

    let stop = Arc::new(AtomicBool::new(false));
    let (stopped, timing) = (stop.clone(), stream.clone());
    std::thread::Builder::new()
        .name("estrade-pulse-record".into())
        .spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match block_on(timing.timing_info()) {
                    Ok(t) => {
                        // The source's own latency and what waits in the server's buffer.
                        let queued = t.write_offset.saturating_sub(t.read_offset).max(0) as u64;
                        let queued_us = queued / 4 * 1_000_000 / u64::from(rate);
                        let us = t.source_usec.saturating_add(queued_us);
                        counters
                            .latency_us
                            .store(u32::try_from(us).unwrap_or(u32::MAX), Ordering::Relaxed);
                    }
                    Err(e) => {
                        if !stopped.load(Ordering::Relaxed) {
                            on_lost(e.to_string());
                        }
                        return;
                    }
                }
                std::thread::sleep(TIMING_EVERY);
            }
        })
        .map_err(DeviceError::Thread)?;
    Ok((
        rate,
        PulseRecord {
            stop,
            stream: Some(stream),
            _client: client,
        },
    ))
}
