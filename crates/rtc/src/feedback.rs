//! Our RTCP feedback on what the server sends us, as one webrtc-rs interceptor: the TWCC
//! reports of [`crate::twcc`] (in place of webrtc-rs's receiver) and the video NACKs of
//! [`crate::nack`] (in place of webrtc-rs's generator).
//!
//! Each remote stream's reader stamps a packet's arrival as it is read and hands it on
//! with a non-blocking `try_send` into one bounded lock-free queue. (webrtc-rs's receiver
//! awaited a channel of capacity 1 on every read of every track, so one slow task delayed
//! all reads, and the server read that delay as a queue on the network.) One task per
//! PeerConnection drains the queue every [`TICK`], sends the NACKs due and, every
//! [`TWCC_INTERVAL`], the TWCC reports.

use std::collections::HashMap;
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
use webrtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpHeaderExtensionCapability, RTPCodecType};
use webrtc::rtp_transceiver::{RTCPFeedback, TYPE_RTCP_FB_NACK, TYPE_RTCP_FB_TRANSPORT_CC};

use crate::nack::NackRequester;
use crate::twcc::TwccFeedback;

/// How often the queue is drained and NACKs sent (a resend asked for 25 ms late is still
/// in time: a frame waits 500 ms for it).
const TICK: Duration = Duration::from_millis(25);
/// How often TWCC reports go out. libwebrtc sends them every 50–250 ms depending on the
/// rate; 50 ms lets the server see a capped downlink sooner, for ~13 kbit/s of feedback at
/// 1.5 Mbit/s received.
const TWCC_INTERVAL: Duration = Duration::from_millis(50);
/// Video streams whose losses are followed at once (the server sends one per subscribed
/// camera; the engine caps the tracks per participant well below).
const MAX_NACK_STREAMS: usize = 64;
/// A stream without packets for this long may give its place to a new one (µs).
const SILENT_US: i64 = 5_000_000;
/// Arrivals waiting for the next report: at 2,000 packets/s, 2 s of a stalled task.
const QUEUE: usize = 4096;

/// Asks for transport-wide sequence numbers on every stream the server sends us and
/// answers them with our feedback; announces NACK for video and sends it.
pub(crate) fn configure(mut registry: Registry, media: &mut MediaEngine) -> Registry {
    for parameter in ["", "pli"] {
        media.register_feedback(
            RTCPFeedback {
                typ: TYPE_RTCP_FB_NACK.to_owned(),
                parameter: parameter.to_owned(),
            },
            RTPCodecType::Video,
        );
    }
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
    registry.add(Box::new(FeedbackBuilder));
    registry
}

struct FeedbackBuilder;

impl InterceptorBuilder for FeedbackBuilder {
    fn build(&self, id: &str) -> Result<Arc<dyn Interceptor + Send + Sync>, InterceptorError> {
        let (arrivals, queued) = crossbeam_channel::bounded(QUEUE);
        Ok(Arc::new(FeedbackReceiver {
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
    ssrc: u32,
    at_us: i64,
    /// The transport-wide sequence number, when the stream carries it.
    twcc: Option<u16>,
    /// The RTP sequence number, when the stream's losses are asked for again (video).
    nack: Option<u16>,
}

struct FeedbackReceiver {
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
impl Interceptor for FeedbackReceiver {
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
                self.epoch,
                self.sender_ssrc,
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
        let extension = info
            .rtp_header_extensions
            .iter()
            .find(|e| e.uri == webrtc::sdp::extmap::TRANSPORT_CC_URI)
            .and_then(|e| u8::try_from(e.id).ok())
            .filter(|&id| id != 0);
        // Video only: livekit-server offers NACK on Opus too, but an audio resend comes
        // after its turn to play (`nack.rs`).
        let nack = info
            .mime_type
            .get(..6)
            .is_some_and(|m| m.eq_ignore_ascii_case("video/"))
            && info
                .rtcp_feedback
                .iter()
                .any(|f| f.typ == TYPE_RTCP_FB_NACK && f.parameter.is_empty());
        if extension.is_none() && !nack {
            return reader;
        }
        Arc::new(StampedStream {
            inner: reader,
            extension,
            nack,
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

/// A remote stream's reader that notes each packet's arrival with its transport-wide
/// sequence number and (video) its RTP sequence number.
struct StampedStream {
    inner: Arc<dyn RTPReader + Send + Sync>,
    extension: Option<u8>,
    nack: bool,
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
        let twcc = self
            .extension
            .and_then(|id| packet.header.get_extension(id))
            .and_then(|ext| match ext[..] {
                [high, low, ..] => Some(u16::from_be_bytes([high, low])),
                _ => None,
            });
        let nack = self.nack.then_some(packet.header.sequence_number);
        if twcc.is_some() || nack.is_some() {
            let arrival = Arrival {
                ssrc: self.ssrc,
                at_us,
                twcc,
                nack,
            };
            if self.arrivals.try_send(arrival).is_err() {
                self.overflowed.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok((packet, attributes))
    }
}

/// The feedback task of one PeerConnection: ends when it closes.
async fn report(
    writer: Arc<dyn RTCPWriter + Send + Sync>,
    queued: Receiver<Arrival>,
    // The readers' clock: NACK timing compares their stamps with now.
    epoch: Instant,
    sender_ssrc: u32,
    closed: Arc<AtomicBool>,
    overflowed: Arc<AtomicU64>,
) {
    let mut feedback = TwccFeedback::new(sender_ssrc);
    let mut nacks: HashMap<u32, NackRequester> = HashMap::new();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut next_twcc = Duration::ZERO;
    let mut reports = Vec::new();
    let mut asks = Vec::new();
    let mut logged_overflow = 0;
    let (mut untracked, mut logged_untracked) = (0u64, 0u64);
    let mut untracked_logged_at: Option<Instant> = None;
    loop {
        ticker.tick().await;
        let ended = loop {
            match queued.try_recv() {
                Ok(a) => {
                    if let Some(seq) = a.twcc {
                        feedback.record(seq, a.at_us, a.ssrc);
                    }
                    if let Some(seq) = a.nack {
                        match nack_stream(&mut nacks, a.ssrc, a.at_us) {
                            Some(stream) => stream.handle_packet(seq, a.at_us),
                            None => untracked += 1,
                        }
                    }
                }
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        if ended || closed.load(Ordering::Relaxed) {
            return;
        }
        let now_us = i64::try_from(epoch.elapsed().as_micros()).unwrap_or(i64::MAX);
        for (&media_ssrc, stream) in nacks.iter_mut() {
            stream.poll_nack(now_us, &mut asks);
            if asks.is_empty() {
                continue;
            }
            let nack = TransportLayerNack {
                sender_ssrc,
                media_ssrc,
                nacks: nack_pairs_from_sequence_numbers(&asks),
            };
            asks.clear();
            let packets: [Box<dyn webrtc::rtcp::packet::Packet + Send + Sync>; 1] =
                [Box::new(nack)];
            if let Err(e) = writer.write(&packets, &Attributes::new()).await {
                tracing::debug!(error = %e, "a NACK could not be sent");
            }
        }
        if epoch.elapsed() >= next_twcc {
            next_twcc = epoch.elapsed() + TWCC_INTERVAL;
            feedback.poll_feedback(&mut reports);
            for report in reports.drain(..) {
                // One report per datagram: several could pass an MTU together.
                let packets: [Box<dyn webrtc::rtcp::packet::Packet + Send + Sync>; 1] =
                    [Box::new(report)];
                if let Err(e) = writer.write(&packets, &Attributes::new()).await {
                    tracing::debug!(error = %e, "a TWCC report could not be sent");
                }
            }
        }
        let overflow = overflowed.load(Ordering::Relaxed);
        if overflow > logged_overflow {
            tracing::warn!(
                arrivals = overflow - logged_overflow,
                too_old = feedback.too_old,
                "RTP arrivals dropped: the feedback task fell behind"
            );
            logged_overflow = overflow;
        }
        // Said once, then at most every 10 s while it lasts.
        let quiet = untracked_logged_at.is_some_and(|t| t.elapsed() < Duration::from_secs(10));
        if untracked > logged_untracked && !quiet {
            tracing::warn!(
                packets = untracked - logged_untracked,
                streams = nacks.len(),
                "video packets of a stream beyond the NACK limit: its losses are not asked for"
            );
            logged_untracked = untracked;
            untracked_logged_at = Some(Instant::now());
        }
    }
}

/// The NACK state of the stream `ssrc`; a new stream replaces one that has been silent
/// (its track ended) when [`MAX_NACK_STREAMS`] are followed already, else is not followed.
fn nack_stream(
    nacks: &mut HashMap<u32, NackRequester>,
    ssrc: u32,
    now_us: i64,
) -> Option<&mut NackRequester> {
    if !nacks.contains_key(&ssrc) && nacks.len() >= MAX_NACK_STREAMS {
        let silent = nacks
            .iter()
            .find(|(_, s)| s.silent_since(now_us) >= SILENT_US)
            .map(|(&ssrc, _)| ssrc)?;
        nacks.remove(&silent);
    }
    Some(nacks.entry(ssrc).or_default())
}
