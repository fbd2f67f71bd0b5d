//! Which STUN/TURN servers to use. With no ICE servers configured, livekit-server hands out
//! public STUN (Google's, Twilio's): useless when the server is on this machine, and slow or
//! failing offline. So for a loopback server only loopback ICE servers are kept.

use estrade_rtc::IceServer;

pub(crate) fn usable(
    servers: &[estrade_session::IceServer],
    server_on_loopback: bool,
) -> Vec<IceServer> {
    servers
        .iter()
        .filter_map(|s| {
            let urls: Vec<String> = s
                .urls
                .iter()
                .filter(|u| !server_on_loopback || host(u).is_some_and(is_loopback_host))
                .cloned()
                .collect();
            (!urls.is_empty()).then(|| IceServer {
                urls,
                username: s.username.clone(),
                credential: s.credential.clone(),
            })
        })
        .collect()
}

/// The host of `stun:host:port`, `turn:host?transport=udp`, `turns:[::1]:5349`.
fn host(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once(':')?;
    let rest = rest.trim_start_matches("//");
    let rest = rest.split('?').next()?;
    if let Some(v6) = rest.strip_prefix('[') {
        return v6.split(']').next();
    }
    Some(rest.split(':').next().unwrap_or(rest))
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(urls: &[&str]) -> estrade_session::IceServer {
        estrade_session::IceServer {
            urls: urls.iter().map(|u| u.to_string()).collect(),
            username: "u".into(),
            credential: "c".into(),
        }
    }

    #[test]
    fn public_stun_is_dropped_for_a_loopback_server() {
        let given = [
            server(&[
                "stun:stun.l.google.com:19302",
                "stun:global.stun.twilio.com:3478",
            ]),
            server(&[
                "turn:127.0.0.1:3478?transport=udp",
                "turns:[::1]:5349",
                "turn:localhost",
            ]),
        ];
        let kept = usable(&given, true);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].urls.len(), 3);
        assert_eq!(kept[0].credential, "c");
    }

    #[test]
    fn everything_is_kept_for_a_remote_server() {
        let given = [
            server(&["stun:stun.l.google.com:19302"]),
            server(&["turns:turn.example:443"]),
        ];
        assert_eq!(usable(&given, false).len(), 2);
        assert!(usable(&[server(&["garbage"])], true).is_empty());
    }
}
