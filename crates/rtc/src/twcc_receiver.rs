//! The TWCC feedback of [`crate::twcc`] as a webrtc-rs interceptor, in place of webrtc-rs's
//! own receiver.
//!
//! Each remote stream's reader stamps a packet's arrival as it is read and hands it on
//! with a non-blocking `try_send` into one bounded lock-free queue. (webrtc-rs's receiver
//! awaited a channel of capacity 1 on every read of every track, so one slow task delayed
//! all reads, and the server read that delay as a queue on the network.) One task per
//! PeerConnection drains the queue and sends the reports every [`INTERVAL`].

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use webrtc::api::media_engine::MediaEngine;
use webrtc::interceptor::registry::Registry;
use webrtc::interceptor::stream_info::StreamInfo;
use webrtc::interceptor::{
    Attributes, Error as InterceptorError, Interceptor, InterceptorBuilder, RTCPReader, RTCPWriter,
    RTPReader, RTPWriter,
};
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpHeaderExtensionCapability, RTPCodecType};
use webrtc::rtp_transceiver::{RTCPFeedback, TYPE_RTCP_FB_TRANSPORT_CC};

use crate::twcc::TwccFeedback;

/// How often reports go out. libwebrtc sends them every 50–250 ms depending on the rate;
/// 50 ms lets the server see a capped downlink sooner, for ~13 kbit/s of feedback at 1.5
/// Mbit/s received.
const INTERVAL: Duration = Duration::from_millis(50);
/// Arrivals waiting for the next report: at 2,000 packets/s, 2 s of a stalled task.
const QUEUE: usize = 4096;

/// Asks for transport-wide sequence numbers on every stream the server sends us and
/// answers them with our feedback.
pub(crate) fn configure(mut registry: Registry, media: &mut MediaEngine) -> Registry {
    for kind in [RTPCodecType::Audio, RTPCodecType::Video] {
        media.register_feedback(
            RTCPFeedback {
                typ: TYPE_RTCP_FB_TRANSPORT_CC.to_owned(),
                parameter: String::new(),
            },
            kind,
        );
        // Fails only for a codec type that is neither: never here.
        let _ = media.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: webrtc::sdp::extmap::TRANSPORT_CC_URI.to_owned(),
            },
            kind,
            None,
        );
    }
    registry.add(Box::new(TwccReceiverBuilder));
    registry
}

struct TwccReceiverBuilder;

impl InterceptorBuilder for TwccReceiverBuilder {
    fn build(&self, id: &str) -> Result<Arc<dyn Interceptor + Send + Sync>, InterceptorError> {
        let (arrivals, queued) = crossbeam_channel::bounded(QUEUE);
        Ok(Arc::new(TwccReceiver {
            arrivals,
            queued: Mutex::new(Some(queued)),
            epoch: Instant::now(),
            sender_ssrc: RandomState::new().hash_one(id) as u32,
            closed: Arc::new(AtomicBool::new(false)),
            overflowed: Arc::new(AtomicU64::new(0)),
        }))
    }
}

#[derive(Clone, Copy)]
struct Arrival {
    seq: u16,
    at_us: i64,
    ssrc: u32,
}

struct TwccReceiver {
    arrivals: Sender<Arrival>,
    /// Taken by the reporting task when the PeerConnection binds its RTCP writer.
    queued: Mutex<Option<Receiver<Arrival>>>,
    epoch: Instant,
    sender_ssrc: u32,
    closed: Arc<AtomicBool>,
    /// Arrivals that found the queue full (they look lost to the server).
    overflowed: Arc<AtomicU64>,
}

#[async_trait]
impl Interceptor for TwccReceiver {
    async fn bind_rtcp_reader(
        &self,
        reader: Arc<dyn RTCPReader + Send + Sync>,
    ) -> Arc<dyn RTCPReader + Send + Sync> {
        reader
    }

    async fn bind_rtcp_writer(
        &self,
        writer: Arc<dyn RTCPWriter + Send + Sync>,
    ) -> Arc<dyn RTCPWriter + Send + Sync> {
        let queued = self.queued.lock().ok().and_then(|mut q| q.take());
        if let Some(queued) = queued {
            tokio::spawn(report(
                Arc::clone(&writer),
                queued,
                TwccFeedback::new(self.sender_ssrc),
                Arc::clone(&self.closed),
                Arc::clone(&self.overflowed),
            ));
        }
        writer
    }

    async fn bind_local_stream(
        &self,
        _info: &StreamInfo,
        writer: Arc<dyn RTPWriter + Send + Sync>,
    ) -> Arc<dyn RTPWriter + Send + Sync> {
        writer
    }

    async fn unbind_local_stream(&self, _info: &StreamInfo) {}

    async fn bind_remote_stream(
        &self,
        info: &StreamInfo,
        reader: Arc<dyn RTPReader + Send + Sync>,
    ) -> Arc<dyn RTPReader + Send + Sync> {
        let Some(extension) = info
            .rtp_header_extensions
            .iter()
            .find(|e| e.uri == webrtc::sdp::extmap::TRANSPORT_CC_URI)
            .and_then(|e| u8::try_from(e.id).ok())
            .filter(|&id| id != 0)
        else {
            return reader;
        };
        Arc::new(StampedStream {
            inner: reader,
            extension,
            ssrc: info.ssrc,
            arrivals: self.arrivals.clone(),
            epoch: self.epoch,
            overflowed: Arc::clone(&self.overflowed),
        })
    }

    async fn unbind_remote_stream(&self, _info: &StreamInfo) {}

    async fn close(&self) -> Result<(), InterceptorError> {
        self.closed.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// A remote stream's reader that notes each packet's transport-wide sequence number and
/// arrival.
struct StampedStream {
    inner: Arc<dyn RTPReader + Send + Sync>,
    extension: u8,
    ssrc: u32,
    arrivals: Sender<Arrival>,
    epoch: Instant,
    overflowed: Arc<AtomicU64>,
}

#[async_trait]
impl RTPReader for StampedStream {
    async fn read(
        &self,
        buf: &mut [u8],
        attributes: &Attributes,
    ) -> Result<(webrtc::rtp::packet::Packet, Attributes), InterceptorError> {
        let (packet, attributes) = self.inner.read(buf, attributes).await?;
        let at_us = i64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(i64::MAX);
        if let Some(ext) = packet.header.get_extension(self.extension)
            && let [high, low, ..] = ext[..]
        {
            let arrival = Arrival {
                seq: u16::from_be_bytes([high, low]),
                at_us,
                ssrc: self.ssrc,
            };
            if self.arrivals.try_send(arrival).is_err() {
                self.overflowed.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok((packet, attributes))
    }
}

/// The reporting task of one PeerConnection: ends when it closes.
async fn report(
    writer: Arc<dyn RTCPWriter + Send + Sync>,
    queued: Receiver<Arrival>,
    mut feedback: TwccFeedback,
    closed: Arc<AtomicBool>,
    overflowed: Arc<AtomicU64>,
) {
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut reports = Vec::new();
    let mut logged_overflow = 0;
    loop {
        ticker.tick().await;
        let ended = loop {
            match queued.try_recv() {
                Ok(a) => feedback.record(a.seq, a.at_us, a.ssrc),
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        if ended || closed.load(Ordering::Relaxed) {
            return;
        }
        feedback.poll_feedback(&mut reports);
        for report in reports.drain(..) {
            // One report per datagram: several could pass an MTU together.
            let packets: [Box<dyn webrtc::rtcp::packet::Packet + Send + Sync>; 1] =
                [Box::new(report)];
            if let Err(e) = writer.write(&packets, &Attributes::new()).await {
                tracing::debug!(error = %e, "a TWCC report could not be sent");
            }
        }
        let overflow = overflowed.load(Ordering::Relaxed);
        if overflow > logged_overflow {
            tracing::warn!(
                arrivals = overflow - logged_overflow,
                too_old = feedback.too_old,
                "TWCC arrivals dropped: the reporting task fell behind"
            );
            logged_overflow = overflow;
        }
    }
}
