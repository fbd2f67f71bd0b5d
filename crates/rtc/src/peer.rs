use std::sync::Arc;

use bytes::Bytes;

use crate::media::RemoteTrack;
use std::time::Duration;
use tokio::sync::mpsc;
use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::configure_rtcp_reports;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::data_channel::RTCDataChannel;
use webrtc::data_channel::data_channel_init::RTCDataChannelInit;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RTPCodecType,
};

/// Which of the two PeerConnections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Publisher,
    Subscriber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    New,
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcEvent {
    /// Send it to the server (`RTCIceCandidateInit` JSON).
    LocalCandidate {
        target: Target,
        candidate_init: String,
    },
    ConnectionStateChanged {
        target: Target,
        state: ConnectionState,
    },
    /// One of our publisher data channels finished its handshake: sends work from now on.
    DataChannelOpened { label: String },
    /// A message from a data channel (`_reliable` or `_lossy`).
    DataReceived { label: String, data: Bytes },
    /// The server started sending a track on the subscriber PC (webrtc-rs reports it with
    /// its first RTP packet).
    TrackReceived(RemoteTrack),
    /// The server reported on one of our video layers (about once a second each): for the
    /// uplink estimate, [`estrade_media::UplinkRate`].
    UplinkReported(estrade_media::UplinkReport),
}

/// The PeerConnections' descriptions and our data channels, for a resume's `SyncState`.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub subscriber_offer: Option<String>,
    pub subscriber_answer: Option<String>,
    /// Label and SCTP stream id of each publisher data channel.
    pub publisher_channels: Vec<(String, u16)>,
}

/// One STUN/TURN server for both PeerConnections.
#[derive(Clone, Default)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

impl std::fmt::Debug for IceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Clone)]
pub struct RtcConfig {
    /// Already filtered by the caller: no public STUN when the server is on loopback.
    pub ice_servers: Vec<IceServer>,
    /// Gather loopback candidates (a server on 127.0.0.1).
    pub allow_loopback: bool,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RtcError {
    #[error("WebRTC setup failed: {0}")]
    Setup(String),
    #[error("the remote description was refused: {0}")]
    RemoteDescription(String),
    #[error("creating the local description failed: {0}")]
    LocalDescription(String),
    #[error("the remote ICE candidate was refused: {0}")]
    Candidate(String),
    #[error("the data channel could not send: {0}")]
    Send(String),
    #[error("the remote track ended: {0}")]
    TrackEnded(String),
}

/// Both PeerConnections and our data channels.
pub struct PeerConnections {
    publisher: Arc<RTCPeerConnection>,
    subscriber: Arc<RTCPeerConnection>,
    reliable: Arc<RTCDataChannel>,
    _lossy: Arc<RTCDataChannel>,
    /// For the tasks reading our senders' RTCP.
    pub(crate) events: mpsc::Sender<RtcEvent>,
}

/// Our interceptors: webrtc-rs's NACK responder (our publisher resends what the server
/// asks for) and RTCP reports; our own feedback on what we receive (`feedback.rs`: TWCC
/// for the server's send-side estimate, `twcc.rs` says why not webrtc-rs's; video NACKs,
/// `nack.rs` says why not webrtc-rs's generator).
fn interceptors(media: &mut MediaEngine) -> Result<Registry, webrtc::Error> {
    use webrtc::interceptor::nack::responder::Responder;
    let mut registry = Registry::new();
    registry.add(Box::new(Responder::builder()));
    let registry = configure_rtcp_reports(registry);
    Ok(crate::feedback::configure(registry, media))
}

/// The WebRTC stack for one of our PeerConnections: codecs (with `red`, RED for audio, so
/// the server sends each Opus frame with copies of the two before it: `red.rs`; plain
/// Opus still comes on PT 111), simulcast header extensions, interceptors, ICE settings.
fn api(config: &RtcConfig, red: bool) -> Result<webrtc::api::API, webrtc::Error> {
    let mut media = MediaEngine::default();
    media.register_default_codecs()?;
    if red {
        media.register_codec(
            RTCRtpCodecParameters {
                capability: RTCRtpCodecCapability {
                    mime_type: "audio/red".to_owned(),
                    clock_rate: 48_000,
                    channels: 2,
                    sdp_fmtp_line: "111/111".to_owned(),
                    rtcp_feedback: Vec::new(),
                },
                payload_type: crate::red::RED_PAYLOAD_TYPE,
                ..Default::default()
            },
            RTPCodecType::Audio,
        )?;
    }
    // Simulcast: the server tells our layers apart by these RTP header extensions.
    for uri in [
        webrtc::sdp::extmap::SDES_MID_URI,
        webrtc::sdp::extmap::SDES_RTP_STREAM_ID_URI,
        webrtc::sdp::extmap::SDES_REPAIR_RTP_STREAM_ID_URI,
    ] {
        media.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: uri.to_owned(),
            },
            RTPCodecType::Video,
            None,
        )?;
    }
    let registry = interceptors(&mut media)?;
    let mut settings = SettingEngine::default();
    settings.set_include_loopback_candidate(config.allow_loopback);
    // The SFU has one address. When its check reaches us before its trickled candidate,
    // the working pair is peer-reflexive, and the default 1 s wait before nominating
    // one made ~1 join in 5 take 1.1 s. Nominate reflexive pairs at once; a relay still
    // waits (2 s) so a direct path wins when there is one.
    settings.set_prflx_acceptance_min_wait(Some(Duration::ZERO));
    settings.set_srflx_acceptance_min_wait(Some(Duration::ZERO));
    Ok(APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build())
}

impl PeerConnections {
    /// Creates both PCs and the publisher's `_reliable`/`_lossy` channels (they must be in
    /// the first publisher offer). Events go to `events`.
    pub async fn new(config: RtcConfig, events: mpsc::Sender<RtcEvent>) -> Result<Self, RtcError> {
        let setup = |e: webrtc::Error| RtcError::Setup(e.to_string());
        // RED only on the subscriber: our publisher sends plain Opus, and offering RED there
        // made livekit-server take our Opus packets for RED.
        let publishing = api(&config, false).map_err(setup)?;
        let receiving = api(&config, true).map_err(setup)?;
        let rtc_config = || RTCConfiguration {
            ice_servers: config
                .ice_servers
                .iter()
                .map(|s| webrtc::ice_transport::ice_server::RTCIceServer {
                    urls: s.urls.clone(),
                    username: s.username.clone(),
                    credential: s.credential.clone(),
                })
                .collect(),
            ..Default::default()
        };
        let publisher = Arc::new(
            publishing
                .new_peer_connection(rtc_config())
                .await
                .map_err(setup)?,
        );
        let subscriber = Arc::new(
            receiving
                .new_peer_connection(rtc_config())
                .await
                .map_err(setup)?,
        );
        for (pc, target) in [
            (&publisher, Target::Publisher),
            (&subscriber, Target::Subscriber),
        ] {
            watch(pc, target, events.clone());
        }
        let tx = events.clone();
        let pc = Arc::downgrade(&subscriber);
        subscriber.on_track(Box::new(move |track, _receiver, _transceiver| {
            let (tx, pc) = (tx.clone(), pc.clone());
            Box::pin(async move {
                let _ = tx
                    .send(RtcEvent::TrackReceived(RemoteTrack::new(track, pc)))
                    .await;
            })
        }));
        // Server → client data arrives on the channels the server opens on the subscriber PC.
        let tx = events.clone();
        subscriber.on_data_channel(Box::new(move |dc: Arc<RTCDataChannel>| {
            forward_messages(&dc, tx.clone());
            Box::pin(async {})
        }));
        let reliable = publisher
            .create_data_channel(
                "_reliable",
                Some(RTCDataChannelInit {
                    ordered: Some(true),
                    ..Default::default()
                }),
            )
            .await
            .map_err(setup)?;
        let lossy = publisher
            .create_data_channel(
                "_lossy",
                Some(RTCDataChannelInit {
                    ordered: Some(false),
                    max_retransmits: Some(0),
                    ..Default::default()
                }),
            )
            .await
            .map_err(setup)?;
        // With a subscribe-less token the server uses the publisher PC for downstream data.
        for dc in [&reliable, &lossy] {
            forward_messages(dc, events.clone());
            report_open(dc, events.clone());
        }
        Ok(Self {
            publisher,
            subscriber,
            reliable,
            _lossy: lossy,
            events,
        })
    }

    /// Applies the server's offer to the subscriber PC; returns our answer's SDP.
    pub async fn answer_subscriber_offer(&self, sdp: String) -> Result<String, RtcError> {
        let offer = RTCSessionDescription::offer(sdp)
            .map_err(|e| RtcError::RemoteDescription(e.to_string()))?;
        self.subscriber
            .set_remote_description(offer)
            .await
            .map_err(|e| RtcError::RemoteDescription(e.to_string()))?;
        let local = |e: webrtc::Error| RtcError::LocalDescription(e.to_string());
        let answer = self.subscriber.create_answer(None).await.map_err(local)?;
        self.subscriber
            .set_local_description(answer.clone())
            .await
            .map_err(local)?;
        Ok(answer.sdp)
    }

    /// A new publisher offer (data channels and tracks), set as the local description.
    pub async fn create_publisher_offer(&self) -> Result<String, RtcError> {
        let local = |e: webrtc::Error| RtcError::LocalDescription(e.to_string());
        let offer = self.publisher.create_offer(None).await.map_err(local)?;
        self.publisher
            .set_local_description(offer.clone())
            .await
            .map_err(local)?;
        Ok(offer.sdp)
    }

    /// A publisher offer that restarts ICE (new credentials, new candidates): after a
    /// resume, the path may have changed. The DTLS and SCTP sessions go on over it.
    pub async fn create_publisher_offer_restarting_ice(&self) -> Result<String, RtcError> {
        let local = |e: webrtc::Error| RtcError::LocalDescription(e.to_string());
        let options = webrtc::peer_connection::offer_answer_options::RTCOfferOptions {
            ice_restart: true,
            ..Default::default()
        };
        let offer = self
            .publisher
            .create_offer(Some(options))
            .await
            .map_err(local)?;
        self.publisher
            .set_local_description(offer.clone())
            .await
            .map_err(local)?;
        Ok(offer.sdp)
    }

    /// What a resuming client tells the server it has.
    pub async fn snapshot(&self) -> Snapshot {
        let sdp = |d: Option<RTCSessionDescription>| d.map(|d| d.sdp);
        Snapshot {
            subscriber_offer: sdp(self.subscriber.current_remote_description().await),
            subscriber_answer: sdp(self.subscriber.current_local_description().await),
            publisher_channels: [&self.reliable, &self._lossy]
                .iter()
                .map(|dc| (dc.label().to_owned(), dc.id()))
                .collect(),
        }
    }

    pub async fn apply_publisher_answer(&self, sdp: String) -> Result<(), RtcError> {
        let answer = RTCSessionDescription::answer(sdp)
            .map_err(|e| RtcError::RemoteDescription(e.to_string()))?;
        self.publisher
            .set_remote_description(answer)
            .await
            .map_err(|e| RtcError::RemoteDescription(e.to_string()))
    }

    /// A candidate from the server, for the PC whose remote description is already set.
    pub async fn add_remote_candidate(
        &self,
        target: Target,
        candidate_init: &str,
    ) -> Result<(), RtcError> {
        let init: RTCIceCandidateInit =
            serde_json::from_str(candidate_init).map_err(|e| RtcError::Candidate(e.to_string()))?;
        self.pc(target)
            .add_ice_candidate(init)
            .await
            .map_err(|e| RtcError::Candidate(e.to_string()))
    }

    /// Sends one message on `_reliable` (client → server data always leaves on the publisher).
    /// Before [`RtcEvent::DataChannelOpened`] for `_reliable` this fails: hold data until then.
    pub async fn send_reliable(&self, data: Bytes) -> Result<(), RtcError> {
        self.reliable
            .send(&data)
            .await
            .map(|_| ())
            .map_err(|e| RtcError::Send(e.to_string()))
    }

    pub async fn close(&self) {
        let _ = self.publisher.close().await;
        let _ = self.subscriber.close().await;
    }

    pub(crate) fn publisher(&self) -> &Arc<RTCPeerConnection> {
        &self.publisher
    }

    fn pc(&self, target: Target) -> &Arc<RTCPeerConnection> {
        match target {
            Target::Publisher => &self.publisher,
            Target::Subscriber => &self.subscriber,
        }
    }
}

fn watch(pc: &RTCPeerConnection, target: Target, events: mpsc::Sender<RtcEvent>) {
    let tx = events.clone();
    pc.on_ice_candidate(Box::new(move |candidate| {
        let tx = tx.clone();
        Box::pin(async move {
            let Some(candidate) = candidate else { return };
            match candidate.to_json().map(|init| serde_json::to_string(&init)) {
                Ok(Ok(candidate_init)) => {
                    let _ = tx
                        .send(RtcEvent::LocalCandidate {
                            target,
                            candidate_init,
                        })
                        .await;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "could not serialise a local candidate"),
                Err(e) => tracing::warn!(error = %e, "could not read a local candidate"),
            }
        })
    }));
    pc.on_peer_connection_state_change(Box::new(move |state| {
        let tx = events.clone();
        let state = match state {
            RTCPeerConnectionState::Connecting => ConnectionState::Connecting,
            RTCPeerConnectionState::Connected => ConnectionState::Connected,
            RTCPeerConnectionState::Disconnected => ConnectionState::Disconnected,
            RTCPeerConnectionState::Failed => ConnectionState::Failed,
            RTCPeerConnectionState::Closed => ConnectionState::Closed,
            _ => ConnectionState::New,
        };
        Box::pin(async move {
            let _ = tx
                .send(RtcEvent::ConnectionStateChanged { target, state })
                .await;
        })
    }));
}

fn report_open(dc: &Arc<RTCDataChannel>, events: mpsc::Sender<RtcEvent>) {
    let label = dc.label().to_owned();
    dc.on_open(Box::new(move || {
        Box::pin(async move {
            let _ = events.send(RtcEvent::DataChannelOpened { label }).await;
        })
    }));
}

fn forward_messages(dc: &Arc<RTCDataChannel>, events: mpsc::Sender<RtcEvent>) {
    let label = dc.label().to_owned();
    dc.on_message(Box::new(move |msg| {
        let tx = events.clone();
        let label = label.clone();
        Box::pin(async move {
            // Bounded: a slow consumer slows the SCTP reader, it does not grow memory.
            let _ = tx
                .send(RtcEvent::DataReceived {
                    label,
                    data: msg.data,
                })
                .await;
        })
    }));
}
