//! The driver's side of getting a lost connection back: the session decides when and how
//! (`crates/session`); this opens the new socket off the loop (commands go on meanwhile),
//! hands the session what the PeerConnections have, and for a full reconnect replaces the
//! PeerConnections and puts our publications on the new ones.

use std::time::Instant;

use estrade_rtc::{PeerConnections, RtcConfig};
use estrade_session::{DataChannelInfo, ReconnectKind, RtcSnapshot, SignalFailure, SignalTarget};
use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message};

use super::{Driver, RTC_EVENT_CAPACITY};
use crate::events::{LocalTrackEndReason, RoomEvent};
use crate::signal::{self, ConnectError, Ws};

/// A reconnect's socket must open within this: on a dead path the next attempt comes
/// sooner than a long timeout would.
const RECONNECT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Driver {
    /// The session wants another attempt: the old socket goes, a new one is opened off
    /// the loop. A full reconnect starts with the old PeerConnections closed.
    pub(super) async fn start_reconnect(&mut self) {
        let Some(request) = self.session.poll_reconnect() else {
            return;
        };
        self.ws = None;
        if let Some(old) = self.connecting.take() {
            old.abort();
        }
        if request.kind == ReconnectKind::Full {
            self.close_media().await;
        }
        let url = match &request.resume {
            Some((sid, reason)) => signal::resume_url(&self.url, &sid.0, *reason),
            None => self.url.clone(),
        };
        let token = request.token().unwrap_or(&self.token).to_owned();
        tracing::info!(attempt = request.attempt, kind = ?request.kind, "reconnecting");
        self.connecting = Some(tokio::spawn(async move {
            signal::connect_within(&url, &token, RECONNECT_CONNECT_TIMEOUT).await
        }));
    }

    /// A reconnect attempt's socket opened, or could not.
    pub(super) async fn handle_opened(
        &mut self,
        opened: Result<Result<Ws, ConnectError>, tokio::task::JoinError>,
    ) {
        self.connecting = None;
        let now = Instant::now();
        match opened {
            Ok(Ok(ws)) => {
                let snapshot = self.pcs.snapshot().await;
                let rtc = RtcSnapshot {
                    subscriber_offer: snapshot.subscriber_offer,
                    subscriber_answer: snapshot.subscriber_answer,
                    data_channels: snapshot
                        .publisher_channels
                        .into_iter()
                        .map(|(label, id)| DataChannelInfo {
                            label,
                            id,
                            target: SignalTarget::Publisher,
                        })
                        .collect(),
                };
                // Too late (the attempt timed out meanwhile): the socket is not used.
                if self.session.handle_signal_opened(now, rtc) {
                    self.ws = Some(ws);
                }
            }
            Ok(Err(e @ (ConnectError::Unauthorized { .. } | ConnectError::Forbidden { .. }))) => {
                let refused = SignalFailure::Unauthorized(e.to_string());
                self.session.handle_reconnect_failed(now, refused);
            }
            Ok(Err(e)) => {
                let failure = SignalFailure::Unreachable(e.to_string());
                self.session.handle_reconnect_failed(now, failure);
            }
            Err(e) => {
                let failure = SignalFailure::Unreachable(format!("the attempt failed: {e}"));
                self.session.handle_reconnect_failed(now, failure);
            }
        }
    }

    /// Closes the PeerConnections. Their reports go to a channel nobody reads any more
    /// first: webrtc-rs waits for its state callbacks while closing, and a callback
    /// waiting for room in a full channel (the room not reading: the application far
    /// behind) would hold the close, and with it `leave`, for ever.
    pub(super) async fn close_peer_connections(&mut self) {
        let (_, unread) = mpsc::channel(1);
        self.rtc_events = unread;
        self.pcs.close().await;
    }

    /// A full reconnect: the old PeerConnections and what plays from them go.
    pub(super) async fn close_media(&mut self) {
        self.remote_media.abort_all();
        self.tracks_of.clear();
        self.unclaimed.clear();
        self.close_peer_connections().await;
        self.publisher_up = false;
        self.subscriber_up = false;
        self.reliable_open = false;
    }

    /// A full reconnect's new PeerConnections: the first offer (with the data channels),
    /// then our publications, asked again of the server with their mute states; their
    /// pumps go on writing to the same tracks, now carried by the new connections.
    pub(super) async fn replace_peer_connections(&mut self) -> Result<(), estrade_rtc::RtcError> {
        self.close_media().await;
        let (tx, rx) = mpsc::channel(RTC_EVENT_CAPACITY);
        let config = RtcConfig {
            ice_servers: crate::ice::usable(self.session.ice_servers(), self.on_loopback),
            allow_loopback: self.on_loopback,
        };
        self.pcs = PeerConnections::new(config, tx).await?;
        // The old connections' late reports go to a channel nobody reads any more.
        self.rtc_events = rx;
        let offer = self.pcs.create_publisher_offer().await?;
        if let Err(e) = self.session.publisher_offer(Instant::now(), offer) {
            self.reject(e.to_string());
        }
        let mut at = 0;
        while at < self.published.len() {
            match self.republish(at).await {
                Ok(()) => at += 1,
                Err(reason) => {
                    let publication = self.published.remove(at);
                    self.pending.push_back(RoomEvent::LocalTrackEnded {
                        source: publication.source,
                        reason,
                    });
                }
            }
        }
        self.session.renegotiate_publisher();
        Ok(())
    }

    async fn republish(&mut self, at: usize) -> Result<(), LocalTrackEndReason> {
        let p = &mut self.published[at];
        p.request.muted = !*p.enabled.borrow();
        let request = p.request.clone();
        let track = self
            .pcs
            .add_existing_track(&p.track)
            .await
            .map_err(|e| LocalTrackEndReason::Failed(e.to_string()))?;
        if let Err(e) = self.session.publish_track(request) {
            let _ = self.pcs.remove_track(&track).await;
            return Err(LocalTrackEndReason::Refused(e.to_string()));
        }
        let p = &mut self.published[at];
        p.track = track;
        p.sid = None;
        Ok(())
    }
}

/// The next message on the socket; never, while there is none.
pub(super) async fn next_message(
    ws: &mut Option<Ws>,
) -> Option<Result<Message, tungstenite::Error>> {
    match ws {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

/// The attempt's socket, once it opened (or failed); never, while there is no attempt.
pub(super) async fn opened(
    connecting: &mut Option<tokio::task::JoinHandle<Result<Ws, ConnectError>>>,
) -> Result<Result<Ws, ConnectError>, tokio::task::JoinError> {
    match connecting {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}
