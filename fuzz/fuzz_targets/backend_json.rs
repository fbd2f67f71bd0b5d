//! The backend's answers, as the client decodes them: any bytes into each answer type.
#![no_main]

use estrade_backend_api as api;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<api::TokenResponse>(data);
    let _ = serde_json::from_slice::<api::User>(data);
    let _ = serde_json::from_slice::<Vec<api::LiveSession>>(data);
    let _ = serde_json::from_slice::<api::JoinResponse>(data);
    let _ = serde_json::from_slice::<api::LeaveResponse>(data);
    let _ = serde_json::from_slice::<Vec<api::AttendanceRecord>>(data);
    let _ = serde_json::from_slice::<api::LiveKitTokenResponse>(data);
    let _ = serde_json::from_slice::<api::ErrorBody>(data);
});
