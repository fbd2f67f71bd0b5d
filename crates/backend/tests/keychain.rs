//! The sign-in in the real Secret Service (gnome-keyring on a private D-Bus session).
//! `scripts/test.sh` runs these inside `dbus-run-session` with an unlocked keyring.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::Utc;
use estrade_backend::{Account, Backend, BackendUrl, Keychain, Secret};
use estrade_devserver::{Config, ManualClock, seed};

/// A service name of its own per test, so tests never see each other's (or a user's) items.
fn keychain() -> Keychain {
    static N: AtomicU32 = AtomicU32::new(0);
    Keychain::with_service(format!(
        "estrade-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn account(url: &str, email: &str) -> Account {
    Account::new(BackendUrl::parse(url).unwrap(), email)
}

/// What `secret-tool` (libsecret, another client of the same service) sees.
fn secret_tool_lookup(service: &str, account: &Account) -> Option<String> {
    let out = std::process::Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            service,
            "username",
            &account.keychain_account(),
        ])
        .output()
        .expect("secret-tool is installed by scripts/setup.sh");
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

#[tokio::test]
#[ignore = "needs a Secret Service: scripts/test.sh runs it under dbus-run-session"]
async fn store_load_delete_round_trip() {
    let k = keychain();
    let acc = account("https://lms.example.org", "Claire@Example.org");
    assert_eq!(k.load(&acc).await.unwrap(), None);
    k.store(&acc, &Secret::new("rt_first")).await.unwrap();
    assert_eq!(k.load(&acc).await.unwrap(), Some(Secret::new("rt_first")));
    assert_eq!(
        secret_tool_lookup(k.service(), &acc).as_deref(),
        Some("rt_first")
    );
    k.store(&acc, &Secret::new("rt_second")).await.unwrap();
    assert_eq!(k.load(&acc).await.unwrap(), Some(Secret::new("rt_second")));
    k.delete(&acc).await.unwrap();
    assert_eq!(k.load(&acc).await.unwrap(), None);
    assert_eq!(secret_tool_lookup(k.service(), &acc), None);
    k.delete(&acc).await.unwrap();
}

#[tokio::test]
#[ignore = "needs a Secret Service: scripts/test.sh runs it under dbus-run-session"]
async fn accounts_on_different_backends_are_separate() {
    let k = keychain();
    let a = account("https://one.example.org", "lea@example.org");
    let b = account("https://two.example.org", "lea@example.org");
    k.store(&a, &Secret::new("rt_a")).await.unwrap();
    k.store(&b, &Secret::new("rt_b")).await.unwrap();
    assert_eq!(k.load(&a).await.unwrap(), Some(Secret::new("rt_a")));
    assert_eq!(k.load(&b).await.unwrap(), Some(Secret::new("rt_b")));
    k.delete(&a).await.unwrap();
    assert_eq!(k.load(&b).await.unwrap(), Some(Secret::new("rt_b")));
    k.delete(&b).await.unwrap();
}

#[tokio::test]
#[ignore = "needs a Secret Service: scripts/test.sh runs it under dbus-run-session"]
async fn a_remembered_sign_in_follows_token_rotation() {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let server = estrade_devserver::spawn(Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        clock: clock.clone(),
        ..Config::default()
    })
    .await
    .unwrap();
    let url = BackendUrl::parse(&server.url()).unwrap();
    let backend = Backend::new(url.clone()).unwrap();
    let k = keychain();
    let acc = Account::new(url, seed::DEMO_TRAINER_EMAIL);

    // Sign in with "remember me": only the refresh token goes to the keychain.
    let signed_in = backend
        .login(seed::DEMO_TRAINER_EMAIL, &Secret::new(seed::DEMO_PASSWORD))
        .await
        .unwrap()
        .with_refresh_token_sink(k.sink(acc.clone()));
    k.store(&acc, &signed_in.refresh_token().await)
        .await
        .unwrap();

    // The access token expires; the transparent refresh rotates the refresh token and the
    // keychain follows.
    clock.advance(Duration::from_secs(20 * 60));
    signed_in.live_sessions().await.unwrap();
    let stored = k.load(&acc).await.unwrap().expect("still remembered");
    assert_eq!(stored, signed_in.refresh_token().await);

    // The next start signs in from the keychain alone.
    drop(signed_in);
    let resumed = backend.resume(&stored).await.unwrap();
    assert_eq!(resumed.user().email, seed::DEMO_TRAINER_EMAIL);
    k.delete(&acc).await.unwrap();
    server.shutdown().await;
}
