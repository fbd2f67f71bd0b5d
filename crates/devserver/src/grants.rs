//! Session roles → LiveKit grants. The token is the only place a role's powers are
//! written down for LiveKit; the server enforces them.

use std::time::Duration;

use estrade_backend_api::SessionRole;
use livekit_api::access_token::{AccessToken, VideoGrants};

/// The participant attribute carrying the session role, so every client can show who
/// leads without asking the backend.
pub const ROLE_ATTRIBUTE: &str = "estrade.role";

pub fn video_grants(role: SessionRole, room: &str) -> VideoGrants {
    let sources: &[&str] = match role {
        SessionRole::Trainer => &["microphone", "camera", "screen_share"],
        SessionRole::CoTrainer => &["microphone", "camera"],
        SessionRole::Student => &["microphone"],
    };
    VideoGrants {
        room_join: true,
        room: room.to_owned(),
        can_publish: Some(true),
        can_subscribe: Some(true),
        can_publish_data: Some(true),
        can_publish_sources: sources.iter().map(|s| (*s).to_owned()).collect(),
        // The role is a participant attribute: whoever may update their own attributes
        // may make themselves a trainer in everyone's eyes (tried on livekit-server
        // 1.13.5). Only the lead trainer keeps it; hands and the like go through the
        // backend, which asks the server.
        can_update_own_metadata: Some(role == SessionRole::Trainer),
        // Moderation (mute others, remove participants) in a later issue.
        room_admin: role == SessionRole::Trainer,
        ..Default::default()
    }
}

pub struct Minted {
    pub jwt: String,
}

#[derive(Debug, thiserror::Error)]
#[error("could not sign the LiveKit token: {0}")]
pub struct MintError(String);

pub struct TokenRequest<'a> {
    pub api_key: &'a str,
    pub api_secret: &'a str,
    pub identity: &'a str,
    pub name: &'a str,
    pub room: &'a str,
    pub role: SessionRole,
    pub ttl: Duration,
}

pub fn mint(req: TokenRequest<'_>) -> Result<Minted, MintError> {
    let role = crate::db::role_str(req.role);
    let jwt = AccessToken::with_api_key(req.api_key, req.api_secret)
        .with_identity(req.identity)
        .with_name(req.name)
        .with_ttl(req.ttl)
        .with_attributes([(ROLE_ATTRIBUTE, role)])
        .with_grants(video_grants(req.role, req.room))
        .to_jwt()
        .map_err(|e| MintError(e.to_string()))?;
    Ok(Minted { jwt })
}

#[cfg(test)]
mod tests {
    use super::*;
    use livekit_api::access_token::TokenVerifier;

    #[test]
    fn student_tokens_only_allow_the_microphone() {
        let minted = mint(TokenRequest {
            api_key: "devkey",
            api_secret: "secret",
            identity: "42",
            name: "Léa",
            room: "estrade-1",
            role: SessionRole::Student,
            ttl: Duration::from_secs(7200),
        })
        .unwrap();
        let claims = TokenVerifier::with_api_key("devkey", "secret")
            .verify(&minted.jwt)
            .unwrap();
        assert_eq!(claims.sub, "42");
        assert_eq!(claims.video.room, "estrade-1");
        assert_eq!(
            claims.video.can_publish_sources,
            vec!["microphone".to_owned()]
        );
        assert!(!claims.video.room_admin);
        assert_eq!(claims.video.can_update_own_metadata, Some(false));
        assert_eq!(
            claims.attributes.get(ROLE_ATTRIBUTE).map(String::as_str),
            Some("student")
        );
    }
}
