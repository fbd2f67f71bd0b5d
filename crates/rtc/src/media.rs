//! Media tracks on the two PeerConnections: our Opus track on the publisher, the server's
//! tracks arriving on the subscriber. Only RTP payloads cross this interface.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};

use webrtc::api::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use webrtc::media::Sample;
use webrtc::media::io::sample_builder::SampleBuilder;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp::codecs::vp8::Vp8Packet;
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpCodecCapability, RTPCodecType};
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use webrtc::track::track_remote::TrackRemote;

use crate::peer::{PeerConnections, RtcError};

/// A track of ours on the publisher PC. Cheap to clone.
#[derive(Clone)]
pub struct LocalTrack {
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<RTCRtpSender>,
    /// Set when the server relays a subscriber's PLI/FIR: the next frame must be a keyframe.
    keyframe_wanted: Arc<AtomicBool>,
}

impl std::fmt::Debug for LocalTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTrack")
            .field("id", &self.track.id())
            .finish()
    }
}

impl LocalTrack {
    /// Whether a keyframe was asked for since the last call (video).
    pub fn take_keyframe_request(&self) -> bool {
        self.keyframe_wanted.swap(false, Ordering::Relaxed)
    }

    /// Sends one encoded frame (Opus packet, VP8 frame) lasting `duration`.
    pub async fn write(&self, packet: Bytes, duration: Duration) -> Result<(), RtcError> {
        self.track
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
}

/// A track the server sends us on the subscriber PC.
#[derive(Clone)]
pub struct RemoteTrack {
    track: Arc<TrackRemote>,
    /// To send keyframe requests; weak because the PC owns the handler that made this.
    pc: std::sync::Weak<RTCPeerConnection>,
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
        Self { track, pc }
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

    /// Reassembles this VP8 track's RTP packets into whole frames.
    pub fn vp8_frames(self) -> RemoteVideoFrames {
        RemoteVideoFrames {
            builder: SampleBuilder::new(64, Vp8Packet::default(), 90_000),
            track: self,
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

    /// The next RTP packet; an error when the track ended.
    pub async fn read(&self) -> Result<RtpPacket, RtcError> {
        let (packet, _) = self
            .track
            .read_rtp()
            .await
            .map_err(|e| RtcError::TrackEnded(e.to_string()))?;
        Ok(RtpPacket {
            sequence: packet.header.sequence_number,
            timestamp: packet.header.timestamp,
            payload: packet.payload,
        })
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
        )
        .await
    }

    /// Adds a sendonly VP8 track (same rules as audio).
    pub async fn add_vp8_track(&self, cid: &str, stream_id: &str) -> Result<LocalTrack, RtcError> {
        self.add_track(
            RTCRtpCodecCapability {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![],
            },
            cid,
            stream_id,
        )
        .await
    }

    async fn add_track(
        &self,
        codec: RTCRtpCodecCapability,
        cid: &str,
        stream_id: &str,
    ) -> Result<LocalTrack, RtcError> {
        let track = Arc::new(TrackLocalStaticSample::new(
            codec,
            cid.to_owned(),
            stream_id.to_owned(),
        ));
        let sender = self
            .publisher()
            .add_track(Arc::clone(&track) as Arc<dyn TrackLocal + Send + Sync>)
            .await
            .map_err(|e| RtcError::Setup(e.to_string()))?;
        // RTCP from the server must be read for the interceptors (NACK, reports) to work;
        // keyframe requests are noted for the encoder. The task ends with the sender.
        let keyframe_wanted = Arc::new(AtomicBool::new(false));
        let (rtcp, wanted) = (Arc::clone(&sender), Arc::clone(&keyframe_wanted));
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            while let Ok((packets, _)) = rtcp.read(&mut buf).await {
                let asks_keyframe = packets.iter().any(|p| {
                    p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>()
                });
                if asks_keyframe {
                    wanted.store(true, Ordering::Relaxed);
                }
            }
        });
        Ok(LocalTrack {
            track,
            sender,
            keyframe_wanted,
        })
    }

    /// Takes one of our tracks off the publisher PC. Renegotiate afterwards.
    pub async fn remove_track(&self, track: &LocalTrack) -> Result<(), RtcError> {
        self.publisher()
            .remove_track(&track.sender)
            .await
            .map_err(|e| RtcError::Setup(e.to_string()))
    }
}

/// Whole encoded video frames of a remote track, in order; a frame whose packets were lost
/// is skipped (the decoder then needs a keyframe: [`RemoteTrack::request_keyframe`]).
pub struct RemoteVideoFrames {
    track: RemoteTrack,
    builder: SampleBuilder<Vp8Packet>,
}

impl RemoteVideoFrames {
    /// The next complete frame, and how many frames were dropped before it.
    pub async fn next(&mut self) -> Result<(Bytes, u16), RtcError> {
        loop {
            if let Some(sample) = self.builder.pop() {
                return Ok((sample.data, sample.prev_dropped_packets));
            }
            let (packet, _) = self
                .track
                .track
                .read_rtp()
                .await
                .map_err(|e| RtcError::TrackEnded(e.to_string()))?;
            self.builder.push(packet);
        }
    }

    pub fn track(&self) -> &RemoteTrack {
        &self.track
    }
}
