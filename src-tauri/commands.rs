//! IPC commands. Each is a thin mapping onto `estrade-backend`; the rules live there.

use estrade_backend::api::{LiveSession, User};
use estrade_backend::{Account, Backend, BackendUrl, Secret};
use serde::Serialize;
use tauri::State;

use crate::error::IpcError;
use crate::state::{AppState, Current};

#[derive(Serialize)]
pub struct AppInfo {
    version: &'static str,
    /// Prefills the sign-in form: the launch flag, else the remembered account's.
    backend_url: Option<String>,
    email: Option<String>,
}

#[tauri::command]
pub async fn app_info(state: State<'_, AppState>) -> Result<AppInfo, IpcError> {
    let remembered = state.account_file.load();
    Ok(AppInfo {
        version: env!("CARGO_PKG_VERSION"),
        backend_url: state
            .launch_backend_url
            .as_ref()
            .or(remembered.as_ref().map(|a| &a.backend))
            .map(ToString::to_string),
        email: remembered.map(|a| a.email),
    })
}

#[derive(Serialize)]
pub struct SignInOutcome {
    user: User,
    /// False when "remember me" was asked but the keychain refused: signed in for now only.
    remembered: bool,
    remember_error: Option<IpcError>,
}

/// Signs back in without a password when possible: an automation sign-in given at launch,
/// else the remembered account's refresh token from the keychain. `None`: show the form.
#[tauri::command]
pub async fn restore_session(
    state: State<'_, AppState>,
) -> Result<Option<SignInOutcome>, IpcError> {
    if let Some(current) = state.current.read().await.as_ref() {
        return Ok(Some(SignInOutcome {
            user: current.signed_in.user().clone(),
            remembered: current.remembered,
            remember_error: None,
        }));
    }
    let auto = state
        .auto_sign_in
        .lock()
        .map_err(|_| IpcError::new("internal", "state poisoned"))?
        .take();
    if let (Some(auto), Some(url)) = (auto, state.launch_backend_url.clone()) {
        return sign_in_with(&state, url, &auto.email, &auto.password, true)
            .await
            .map(Some);
    }
    let Some(account) = state.account_file.load() else {
        return Ok(None);
    };
    let Some(refresh_token) = state.keychain.load(&account).await? else {
        return Ok(None);
    };
    let backend = Backend::new(account.backend.clone())?;
    let signed_in = match backend.resume(&refresh_token).await {
        Ok(s) => s,
        Err(e) if e.needs_sign_in() => {
            tracing::info!("the remembered sign-in is no longer valid; asking for the password");
            state.keychain.delete(&account).await?;
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    // The stored token was used up by the refresh: keep the new one.
    state
        .keychain
        .store(&account, &signed_in.refresh_token().await)
        .await?;
    let user = signed_in.user().clone();
    let signed_in = signed_in.with_refresh_token_sink(state.keychain.sink(account.clone()));
    *state.current.write().await = Some(Current {
        signed_in,
        account,
        remembered: true,
    });
    tracing::info!("signed back in from the keychain");
    Ok(Some(SignInOutcome {
        user,
        remembered: true,
        remember_error: None,
    }))
}

#[tauri::command]
pub async fn sign_in(
    state: State<'_, AppState>,
    backend_url: String,
    email: String,
    password: String,
    remember: bool,
) -> Result<SignInOutcome, IpcError> {
    let url = BackendUrl::parse(&backend_url)?;
    sign_in_with(&state, url, &email, &Secret::new(password), remember).await
}

async fn sign_in_with(
    state: &AppState,
    url: BackendUrl,
    email: &str,
    password: &Secret,
    remember: bool,
) -> Result<SignInOutcome, IpcError> {
    let backend = Backend::new(url.clone())?;
    let signed_in = backend.login(email, password).await?;
    let account = Account::new(url, email);
    let user = signed_in.user().clone();
    let (remembered, remember_error) = if remember {
        match state
            .keychain
            .store(&account, &signed_in.refresh_token().await)
            .await
        {
            Ok(()) => (true, None),
            Err(e) => {
                tracing::warn!(error = %e, "signed in, but the keychain refused to remember it");
                (false, Some(IpcError::from(e)))
            }
        }
    } else {
        // "Remember me" unticked: forget any earlier sign-in of this account.
        if let Err(e) = state.keychain.delete(&account).await {
            tracing::warn!(error = %e, "could not remove an earlier remembered sign-in");
        }
        (false, None)
    };
    state.account_file.save(&account)?;
    let signed_in = if remembered {
        signed_in.with_refresh_token_sink(state.keychain.sink(account.clone()))
    } else {
        signed_in
    };
    *state.current.write().await = Some(Current {
        signed_in,
        account,
        remembered,
    });
    tracing::info!(remembered, "signed in");
    Ok(SignInOutcome {
        user,
        remembered,
        remember_error,
    })
}

/// Revokes the sign-in on the server, forgets the token, keeps the email as a hint.
#[tauri::command]
pub async fn sign_out(state: State<'_, AppState>) -> Result<(), IpcError> {
    let Some(current) = state.current.write().await.take() else {
        return Ok(());
    };
    if let Err(e) = current.signed_in.logout().await {
        // Signed out locally all the same; the server's tokens lapse on their own.
        tracing::warn!(error = %e, "the backend could not be told about the sign-out");
    }
    state.keychain.delete(&current.account).await?;
    tracing::info!("signed out");
    Ok(())
}

#[tauri::command]
pub async fn list_sessions(state: State<'_, AppState>) -> Result<Vec<LiveSession>, IpcError> {
    let signed_in = match state.current.read().await.as_ref() {
        Some(c) => c.signed_in.clone(),
        None => return Err(IpcError::not_signed_in()),
    };
    match signed_in.live_sessions().await {
        Ok(sessions) => {
            tracing::info!(count = sessions.len(), "sessions listed");
            Ok(sessions)
        }
        Err(e) if e.needs_sign_in() => {
            // The sign-in ended on the server's side: drop it here too.
            if let Some(current) = state.current.write().await.take() {
                state.keychain.delete(&current.account).await?;
            }
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}
