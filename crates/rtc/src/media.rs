//! Media tracks on the two PeerConnections: our Opus and video tracks (simulcast or not) on
//! the publisher, the server's tracks arriving on the subscriber. Only RTP payloads cross this interface.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use estrade_media::{UplinkReport, VideoCodec};
use webrtc::api::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8};
use webrtc::media::Sample;
use webrtc::media::io::sample_builder::SampleBuilder;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtcp::receiver_report::ReceiverReport;
use webrtc::rtp::codecs::h264::H264Packet;
use webrtc::rtp::codecs::vp8::Vp8Packet;
use webrtc::rtp_transceiver::RTCPFeedback;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use webrtc::track::track_remote::TrackRemote;

use crate::peer::{PeerConnections, RtcError};

/// A track of ours on the publisher PC: one encoding, or several simulcast layers (each
/// its own RTP stream, tagged with its rid). Cheap to clone.
#[derive(Clone)]
pub struct LocalTrack {
    /// Lowest layer first, as the rids were given.
    layers: Arc<[Arc<TrackLocalStaticSample>]>,
    sender: Arc<RTCRtpSender>,
    /// Per layer, set when the server relays a subscriber's PLI/FIR: that layer's next frame
    /// must be a keyframe.
    keyframe_wanted: Arc<[AtomicBool]>,
    /// Frames handed to the stack, all layers: what was really sent, for statistics and
    /// to prove a muted track sends nothing.
    frames_written: Arc<AtomicU64>,
}

impl std::fmt::Debug for LocalTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTrack")
            .field("id", &self.layers[0].id())
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl LocalTrack {
    /// How many simulcast layers (1 without simulcast).
    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// Whether a keyframe was asked for on this layer since the last call (video).
    pub fn take_keyframe_request(&self, layer: usize) -> bool {
        self.keyframe_wanted
            .get(layer)
            .is_some_and(|w| w.swap(false, Ordering::Relaxed))
    }

    /// Whether both are handles on the same track.
    pub fn same_as(&self, other: &LocalTrack) -> bool {
        Arc::ptr_eq(&self.frames_written, &other.frames_written)
    }

    /// Frames written since the track was added (every layer counts).
    pub fn frames_written(&self) -> u64 {
        self.frames_written.load(Ordering::Relaxed)
    }

    /// Sends one encoded frame (Opus packet, video frame) lasting `duration` on the first
    /// (or only) layer.
    pub async fn write(&self, packet: Bytes, duration: Duration) -> Result<(), RtcError> {
        self.write_layer(0, packet, duration).await
    }

    /// Sends one encoded frame on one simulcast layer.
    pub async fn write_layer(
        &self,
        layer: usize,
        packet: Bytes,
        duration: Duration,
    ) -> Result<(), RtcError> {
        let track = self
            .layers
            .get(layer)
            .ok_or_else(|| RtcError::Send(format!("no simulcast layer {layer}")))?;
        self.frames_written.fetch_add(1, Ordering::Relaxed);
        track
            .write_sample(&Sample {
                data: packet,
                duration,
                ..Default::default()
            })
            .await
            .map_err(|e| RtcError::Send(e.to_string()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
}

/// One RTP packet of a remote track, as far as the media pipeline cares.
#[derive(Debug, Clone)]
pub struct RtpPacket {
    pub sequence: u16,
    pub timestamp: u32,
    pub payload: Bytes,
    /// Copies of earlier frames it carried (RED audio), oldest first.
    pub earlier: [Option<crate::EarlierFrame>; crate::MAX_EARLIER],
}

/// A track the server sends us on the subscriber PC.
#[derive(Clone)]
pub struct RemoteTrack {
    track: Arc<TrackRemote>,
    /// To send keyframe requests; weak because the PC owns the handler that made this.
    pc: std::sync::Weak<RTCPeerConnection>,
    /// RED payloads that could not be split (skipped).
    broken_red: Arc<AtomicU64>,
}

impl std::fmt::Debug for RemoteTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteTrack")
            .field("id", &self.track.id())
            .field("stream_id", &self.track.stream_id())
            .finish()
    }
}

impl PartialEq for RemoteTrack {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.track, &other.track)
    }
}
impl Eq for RemoteTrack {}

impl RemoteTrack {
    pub(crate) fn new(track: Arc<TrackRemote>, pc: std::sync::Weak<RTCPeerConnection>) -> Self {
        Self {
            track,
            pc,
            broken_red: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Packets skipped because their RED payload was broken.
    pub fn broken_red(&self) -> u64 {
        self.broken_red.load(Ordering::Relaxed)
    }

    /// Asks the sender for a keyframe (RTCP PLI), after a loss or to start decoding.
    pub async fn request_keyframe(&self) -> Result<(), RtcError> {
        let Some(pc) = self.pc.upgrade() else {
            return Err(RtcError::TrackEnded("the PeerConnection is closed".into()));
        };
        pc.write_rtcp(&[Box::new(PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: self.track.ssrc(),
        })])
        .await
        .map(|_| ())
        .map_err(|e| RtcError::Send(e.to_string()))
    }

    /// The video codec the publisher chose, if it is one we decode.
    pub fn video_codec(&self) -> Option<VideoCodec> {
        let mime = self.track.codec().capability.mime_type;
        if mime.eq_ignore_ascii_case(MIME_TYPE_VP8) {
            Some(VideoCodec::Vp8)
        } else if mime.eq_ignore_ascii_case(MIME_TYPE_H264) {
            Some(VideoCodec::H264)
        } else {
            None
        }
    }

    /// Reassembles this video track's RTP packets into whole frames (VP8 frames, or H.264
    /// access units in Annex B).
    pub fn video_frames(self, codec: VideoCodec) -> RemoteVideoFrames {
        // 256 packets: a 720p keyframe can take ~100 of them. A frame missing a packet
        // waits for its retransmission (NACK) at most `REPAIR_WAIT`; beyond, it is given
        // up and a keyframe asked. By packet count alone a 1 Mb/s camera waited ~2.5 s,
        // frozen, for a packet that was not coming (measured under 10 % loss each way).
        let builder = match codec {
            VideoCodec::Vp8 => Reassembly::Vp8(
                SampleBuilder::new(256, Vp8Packet::default(), 90_000)
                    .with_max_time_delay(REPAIR_WAIT),
            ),
            VideoCodec::H264 => Reassembly::H264(
                SampleBuilder::new(256, H264Packet::default(), 90_000)
                    .with_max_time_delay(REPAIR_WAIT),
            ),
        };
        RemoteVideoFrames {
            builder,
            track: self,
            arrivals: None,
        }
    }

    /// The msid track id: LiveKit puts the server track sid (`TR_…`) there.
    pub fn track_id(&self) -> String {
        self.track.id()
    }

    /// The msid stream id: `PA_…|TR_…` (or `PA_…|<stream>`), the publisher's sid first.
    pub fn stream_id(&self) -> String {
        self.track.stream_id()
    }

    pub fn kind(&self) -> MediaKind {
        match self.track.kind() {
            RTPCodecType::Video => MediaKind::Video,
            _ => MediaKind::Audio,
        }
    }

    /// The next RTP packet; an error when the track ended. A RED packet (audio) comes
    /// split: its own frame as the payload, the copies of earlier ones in `earlier`.
    pub async fn read(&self) -> Result<RtpPacket, RtcError> {
        loop {
            let (packet, _) = self
                .track
                .read_rtp()
                .await
                .map_err(|e| RtcError::TrackEnded(e.to_string()))?;
            let (sequence, timestamp) = (packet.header.sequence_number, packet.header.timestamp);
            if packet.header.payload_type != crate::red::RED_PAYLOAD_TYPE {
                return Ok(RtpPacket {
                    sequence,
                    timestamp,
                    payload: packet.payload,
                    earlier: [None, None],
                });
            }
            match crate::red::split(&packet.payload, sequence, timestamp) {
                Ok((payload, earlier)) => {
                    return Ok(RtpPacket {
                        sequence,
                        timestamp,
                        payload,
                        earlier,
                    });
                }
                // One broken packet is one lost frame, not the end of the track.
                Err(_) => {
                    self.broken_red.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

impl PeerConnections {
    /// Adds a sendonly Opus track to the publisher PC; `cid` becomes the msid track id (what
    /// the AddTrackRequest's cid must equal). Renegotiate afterwards.
    pub async fn add_audio_track(
        &self,
        cid: &str,
        stream_id: &str,
    ) -> Result<LocalTrack, RtcError> {
        self.add_track(
            RTCRtpCodecCapability {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48_000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1;usedtx=1".to_owned(),
                rtcp_feedback: vec![],
            },
            cid,
            stream_id,
            &[],
        )
        .await
    }

    /// Adds a sendonly video track offering only `codec`, one RTP stream per rid (lowest
    /// layer first, LiveKit's `q`, `h`, `f`); with more than one it is simulcast, announced
    /// with `a=rid`/`a=simulcast`. Same rules as audio otherwise.
    ///
    /// Every video stream carries its rid, so `rids` may not be empty (a single layer is
    /// `["f"]`): with the `sdes:mid` extension on (simulcast needs it) but no rid, a
    /// single-layer VP8 track reached libwebrtc subscribers through livekit-server less
    /// reliably (2–4 frames, then nothing, in ~1 run of 4; with its rid, 15 runs of 15).
    pub async fn add_video_track(
        &self,
        cid: &str,
        stream_id: &str,
        codec: VideoCodec,
        rids: &[&str],
    ) -> Result<LocalTrack, RtcError> {
        let capability = match codec {
            VideoCodec::Vp8 => RTCRtpCodecCapability {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: video_feedback(),
            },
            VideoCodec::H264 => RTCRtpCodecCapability {
                mime_type: MIME_TYPE_H264.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line:
                    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
                        .to_owned(),
                rtcp_feedback: video_feedback(),
            },
        };
        let local = self.add_track(capability, cid, stream_id, rids).await?;
        self.prefer_own_codec(&local).await?;
        Ok(local)
    }

    /// Offer the video track's codec alone: the server records the track's codec from the
    /// SDP, and an offer listing VP8 first would have it answer VP8.
    async fn prefer_own_codec(&self, local: &LocalTrack) -> Result<(), RtcError> {
        let capability = local.layers[0].codec();
        let transceivers = self.publisher().get_transceivers().await;
        for t in transceivers {
            if Arc::ptr_eq(&t.sender().await, &local.sender) {
                t.set_codec_preferences(vec![RTCRtpCodecParameters {
                    capability: capability.clone(),
                    ..Default::default()
                }])
                .await
                .map_err(|e| RtcError::Setup(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Puts a track made on other PeerConnections (closed since: a full reconnect) on
    /// these. The returned handle shares the original's layers and counters, so the pump
    /// that writes to the original goes on, now to these connections. Renegotiate after.
    pub async fn add_existing_track(&self, track: &LocalTrack) -> Result<LocalTrack, RtcError> {
        let layers: Vec<Arc<TrackLocalStaticSample>> = track.layers.iter().cloned().collect();
        let sender = self.attach(&layers, &track.keyframe_wanted).await?;
        let moved = LocalTrack {
            layers: Arc::clone(&track.layers),
            sender,
            keyframe_wanted: Arc::clone(&track.keyframe_wanted),
            frames_written: Arc::clone(&track.frames_written),
        };
        if moved.layers[0].kind() == RTPCodecType::Video {
            self.prefer_own_codec(&moved).await?;
        }
        Ok(moved)
    }

    async fn add_track(
        &self,
        codec: RTCRtpCodecCapability,
        cid: &str,
        stream_id: &str,
        rids: &[&str],
    ) -> Result<LocalTrack, RtcError> {
        let layers: Vec<Arc<TrackLocalStaticSample>> = if rids.is_empty() {
            vec![Arc::new(TrackLocalStaticSample::new(
                codec,
                cid.to_owned(),
                stream_id.to_owned(),
            ))]
        } else {
            rids.iter()
                .map(|rid| {
                    Arc::new(TrackLocalStaticSample::new_with_rid(
                        codec.clone(),
                        cid.to_owned(),
                        (*rid).to_owned(),
                        stream_id.to_owned(),
                    ))
                })
                .collect()
        };
        let keyframe_wanted: Arc<[AtomicBool]> =
            layers.iter().map(|_| AtomicBool::new(false)).collect();
        let sender = self.attach(&layers, &keyframe_wanted).await?;
        Ok(LocalTrack {
            layers: layers.into(),
            sender,
            keyframe_wanted,
            frames_written: Arc::default(),
        })
    }

    /// Adds the layers to the publisher PC as one sender, and reads its RTCP.
    async fn attach(
        &self,
        layers: &[Arc<TrackLocalStaticSample>],
        keyframe_wanted: &Arc<[AtomicBool]>,
    ) -> Result<Arc<RTCRtpSender>, RtcError> {
        let setup = |e: webrtc::Error| RtcError::Setup(e.to_string());
        let sender = self
            .publisher()
            .add_track(Arc::clone(&layers[0]) as Arc<dyn TrackLocal + Send + Sync>)
            .await
            .map_err(setup)?;
        for layer in &layers[1..] {
            sender
                .add_encoding(Arc::clone(layer) as Arc<dyn TrackLocal + Send + Sync>)
                .await
                .map_err(setup)?;
        }
        // RTCP from the server must be read for the interceptors (NACK, reports) to work;
        // keyframe requests are noted for the encoder, and the receiver reports of video
        // layers go to the uplink estimate. The tasks end with the sender.
        let video = layers[0].kind() == RTPCodecType::Video;
        let encodings = sender.get_parameters().await.encodings;
        for (at, layer) in layers.iter().enumerate() {
            let (rtcp, wanted) = (Arc::clone(&sender), Arc::clone(keyframe_wanted));
            let rid = layer.rid().map(str::to_owned);
            let ssrc = encodings
                .iter()
                .find(|e| rid.as_deref().unwrap_or_default() == e.rid.as_str())
                .map(|e| e.ssrc);
            let events = video.then(|| self.events.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1500];
                loop {
                    let read = match &rid {
                        Some(rid) => rtcp.read_simulcast(&mut buf, rid).await,
                        None => rtcp.read(&mut buf).await,
                    };
                    let Ok((packets, _)) = read else { break };
                    let asks_keyframe = packets.iter().any(|p| {
                        p.as_any().is::<PictureLossIndication>()
                            || p.as_any().is::<FullIntraRequest>()
                    });
                    if asks_keyframe {
                        wanted[at].store(true, Ordering::Relaxed);
                    }
                    if let Some(events) = &events {
                        report_uplink(&packets, ssrc, events);
                    }
                }
            });
        }
        Ok(sender)
    }

    /// Takes one of our tracks off the publisher PC. Renegotiate afterwards.
    pub async fn remove_track(&self, track: &LocalTrack) -> Result<(), RtcError> {
        self.publisher()
            .remove_track(&track.sender)
            .await
            .map_err(|e| RtcError::Setup(e.to_string()))
    }
}

/// Hands the report blocks about this layer (`ssrc`; any, if it is not known) to the
/// uplink estimate. About one a second per layer: a full event queue loses a sample of an
/// estimate, nothing else, so it is not waited for.
fn report_uplink(
    packets: &[Box<dyn webrtc::rtcp::packet::Packet + Send + Sync>],
    ssrc: Option<u32>,
    events: &tokio::sync::mpsc::Sender<crate::RtcEvent>,
) {
    let now = ntp_middle(std::time::SystemTime::now());
    for packet in packets {
        let Some(rr) = packet.as_any().downcast_ref::<ReceiverReport>() else {
            continue;
        };
        for block in rr
            .reports
            .iter()
            .filter(|b| ssrc.is_none_or(|s| s == b.ssrc))
        {
            let report = UplinkReport {
                fraction_lost: block.fraction_lost,
                rtt: report_rtt(now, block.last_sender_report, block.delay),
            };
            let _ = events.try_send(crate::RtcEvent::UplinkReported(report));
        }
    }
}

/// The middle 32 bits of the NTP time (16.16 seconds), as sender reports carry it.
fn ntp_middle(now: std::time::SystemTime) -> u32 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let since = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let fraction = (u64::from(since.subsec_nanos()) << 16) / 1_000_000_000;
    ((seconds << 16) | fraction) as u32
}

/// The round trip a report block shows (RFC 3550 §6.4.1): now, less the time of our
/// sender report it echoes (LSR), less how long the server held it (DLSR). None when it
/// echoes none, or for a negative result (a forged value, a clock step).
fn report_rtt(now: u32, lsr: u32, dlsr: u32) -> Option<Duration> {
    if lsr == 0 {
        return None;
    }
    let rtt = now.wrapping_sub(lsr).wrapping_sub(dlsr);
    (rtt < u32::MAX / 2).then(|| Duration::from_micros(u64::from(rtt) * 1_000_000 / 65_536))
}

/// Whole encoded video frames of a remote track, in order; a frame whose packets were lost
/// is skipped (the decoder then needs a keyframe: [`RemoteTrack::request_keyframe`]).
pub struct RemoteVideoFrames {
    track: RemoteTrack,
    builder: Reassembly,
    arrivals: Option<Box<dyn FnMut(u16) + Send>>,
}

enum Reassembly {
    Vp8(SampleBuilder<Vp8Packet>),
    /// Depacketizes STAP-A/FU-A into Annex B (start codes before each NAL unit).
    H264(SampleBuilder<H264Packet>),
}

impl RemoteVideoFrames {
    /// Calls `arrived` with each packet's sequence number as it is read (the engine
    /// measures its downlink's loss with them).
    pub fn with_arrivals(mut self, arrived: impl FnMut(u16) + Send + 'static) -> Self {
        self.arrivals = Some(Box::new(arrived));
        self
    }

    /// The next complete frame, and how many packets of media were lost before it
    /// (padding is not media: livekit-server probes our downlink with padding-only
    /// packets on the video's stream, and counted as lost each probe cost a keyframe).
    pub async fn next(&mut self) -> Result<(Bytes, u16), RtcError> {
        loop {
            let sample = match &mut self.builder {
                Reassembly::Vp8(b) => b.pop(),
                Reassembly::H264(b) => b.pop(),
            };
            if let Some(sample) = sample {
                let lost = media_lost(&sample);
                return Ok((sample.data, lost));
            }
            let (packet, _) = self
                .track
                .track
                .read_rtp()
                .await
                .map_err(|e| RtcError::TrackEnded(e.to_string()))?;
            if let Some(arrived) = &mut self.arrivals {
                arrived(packet.header.sequence_number);
            }
            match &mut self.builder {
                Reassembly::Vp8(b) => b.push(packet),
                Reassembly::H264(b) => b.push(packet),
            }
        }
    }

    pub fn track(&self) -> &RemoteTrack {
        &self.track
    }
}

/// Packets of media lost before `sample`: webrtc-rs counts the padding it skipped among
/// the dropped packets.
fn media_lost(sample: &Sample) -> u16 {
    sample
        .prev_dropped_packets
        .saturating_sub(sample.prev_padding_packets)
}

/// How long (in media time) an incomplete video frame waits for its missing packets to
/// be retransmitted: a NACK round trip through the SFU on each leg, with margin.
const REPAIR_WAIT: Duration = Duration::from_millis(500);

/// What our video m-lines announce: retransmission, keyframe requests, the server's REMB.
fn video_feedback() -> Vec<RTCPFeedback> {
    [
        ("goog-remb", ""),
        ("ccm", "fir"),
        ("nack", ""),
        ("nack", "pli"),
    ]
    .into_iter()
    .map(|(typ, parameter)| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use bytes::Bytes;
    use webrtc::media::io::sample_builder::SampleBuilder;
    use webrtc::rtp::codecs::vp8::Vp8Packet;
    use webrtc::rtp::header::Header;
    use webrtc::rtp::packet::Packet;

    use super::{media_lost, ntp_middle, report_rtt};

    /// One-packet VP8 frames (start of partition, marker) and padding-only packets.
    fn vp8(seq: u16, timestamp: u32) -> Packet {
        Packet {
            header: Header {
                sequence_number: seq,
                timestamp,
                marker: true,
                ..Default::default()
            },
            payload: Bytes::from_static(&[0x10, 0x00, 0x01, 0x02]),
        }
    }

    fn padding(seq: u16, timestamp: u32) -> Packet {
        Packet {
            header: Header {
                sequence_number: seq,
                timestamp,
                padding: true,
                ..Default::default()
            },
            payload: Bytes::new(),
        }
    }

    /// What `RemoteVideoFrames::next` says was lost before each frame.
    fn lost_before_each(packets: Vec<Packet>) -> Vec<u16> {
        let mut builder = SampleBuilder::new(256, Vp8Packet::default(), 90_000)
            .with_max_time_delay(super::REPAIR_WAIT);
        let mut lost = Vec::new();
        for p in packets {
            builder.push(p);
            while let Some(sample) = builder.pop() {
                lost.push(media_lost(&sample));
            }
        }
        lost
    }

    #[test]
    fn the_servers_padding_probes_are_no_loss_and_a_gap_is() {
        // livekit-server probes a downlink with padding after the last frame sent.
        let probed = lost_before_each(vec![
            vp8(1, 3000),
            vp8(2, 6000),
            padding(3, 6000),
            padding(4, 6000),
            padding(5, 6000),
            vp8(6, 9000),
            vp8(7, 12000),
            vp8(8, 15000),
        ]);
        assert!(probed.iter().all(|&l| l == 0), "{probed:?}");
        // Packet 3 never comes: given up once the frames after it span `REPAIR_WAIT`.
        let mut with_gap = vec![vp8(1, 3000), vp8(2, 6000)];
        with_gap.extend((4..40u16).map(|seq| vp8(seq, u32::from(seq) * 3000)));
        let gap = lost_before_each(with_gap);
        assert!(gap.iter().any(|&l| l > 0), "{gap:?}");
    }

    #[test]
    fn round_trips_are_read_from_report_blocks_and_forged_ones_refused() {
        let sent = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        let lsr = ntp_middle(sent);
        // The server held our report 250 ms; we read its answer 330 ms after sending.
        let dlsr = 65_536 / 4;
        let now = ntp_middle(sent + Duration::from_millis(330));
        let rtt = report_rtt(now, lsr, dlsr).unwrap();
        assert!(
            rtt.abs_diff(Duration::from_millis(80)) < Duration::from_millis(1),
            "{rtt:?}"
        );
        // No sender report echoed; a delay longer than the time since: nothing.
        assert_eq!(report_rtt(now, 0, 0), None);
        assert_eq!(report_rtt(now, lsr, 65_536), None);
        // Across the 16-bit seconds wrap of the middle 32 bits.
        assert_eq!(
            report_rtt(10, u32::MAX - 65_536 / 10, 0).map(|r| r.as_millis()),
            Some(100)
        );
    }
}
