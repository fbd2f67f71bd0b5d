//! Media tracks on the two PeerConnections: our Opus track on the publisher, the server's
//! tracks arriving on the subscriber. Only RTP payloads cross this interface.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use webrtc::api::media_engine::MIME_TYPE_OPUS;
use webrtc::media::Sample;
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpCodecCapability, RTPCodecType};
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use webrtc::track::track_remote::TrackRemote;

use crate::peer::{PeerConnections, RtcError};

/// A track of ours on the publisher PC. Cheap to clone.
#[derive(Clone)]
pub struct LocalAudioTrack {
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<RTCRtpSender>,
}

impl std::fmt::Debug for LocalAudioTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAudioTrack")
            .field("id", &self.track.id())
            .finish()
    }
}

impl LocalAudioTrack {
    /// Sends one encoded Opus frame lasting `duration`.
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
    pub marker: bool,
    pub payload: Bytes,
}

/// A track the server sends us on the subscriber PC.
#[derive(Clone)]
pub struct RemoteTrack {
    track: Arc<TrackRemote>,
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
    pub(crate) fn new(track: Arc<TrackRemote>) -> Self {
        Self { track }
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

    pub fn mime_type(&self) -> String {
        self.track.codec().capability.mime_type
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
            marker: packet.header.marker,
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
    ) -> Result<LocalAudioTrack, RtcError> {
        let track = Arc::new(TrackLocalStaticSample::new(
            RTCRtpCodecCapability {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48_000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1;usedtx=1".to_owned(),
                rtcp_feedback: vec![],
            },
            cid.to_owned(),
            stream_id.to_owned(),
        ));
        let sender = self
            .publisher()
            .add_track(Arc::clone(&track) as Arc<dyn TrackLocal + Send + Sync>)
            .await
            .map_err(|e| RtcError::Setup(e.to_string()))?;
        // RTCP from the server (receiver reports, NACKs) must be read for the interceptors
        // to work; this task ends with the sender.
        let rtcp = Arc::clone(&sender);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            while rtcp.read(&mut buf).await.is_ok() {}
        });
        Ok(LocalAudioTrack { track, sender })
    }

    /// Takes one of our tracks off the publisher PC. Renegotiate afterwards.
    pub async fn remove_track(&self, track: &LocalAudioTrack) -> Result<(), RtcError> {
        self.publisher()
            .remove_track(&track.sender)
            .await
            .map_err(|e| RtcError::Setup(e.to_string()))
    }
}
