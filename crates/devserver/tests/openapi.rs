//! docs/openapi.json against the running devserver: every documented operation exists and
//! answers with the documented shape, and the documented error codes are the code's.

mod common;

use std::collections::BTreeSet;

use common::*;
use estrade_backend_api::ErrorCode;
use reqwest::Method;
use serde_json::{Value, json};

fn spec() -> Value {
    // Read at run time: the shared target dir may hold a binary built from another clone.
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo test");
    let path = format!("{dir}/../../docs/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("docs/openapi.json"))
        .expect("valid JSON")
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            &spec["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// A small structural check: types, required properties, enums, array items, recursively.
fn validate(spec: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(spec, schema);
    if let Some(c) = schema.get("const") {
        assert_eq!(value, c, "{at}: const");
    }
    if let Some(e) = schema["enum"].as_array() {
        assert!(e.contains(value), "{at}: {value} not in {e:?}");
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap()).collect(),
        _ => vec![],
    };
    if !types.is_empty() {
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        assert!(types.contains(&actual), "{at}: {actual} is not {types:?}");
    }
    if let Some(required) = schema["required"].as_array() {
        for r in required {
            let r = r.as_str().unwrap();
            assert!(
                value.get(r).is_some(),
                "{at}: required {r} missing in {value}"
            );
        }
    }
    if let (Some(props), Some(obj)) = (schema["properties"].as_object(), value.as_object()) {
        for (k, v) in obj {
            let sub = props
                .get(k)
                .unwrap_or_else(|| panic!("{at}: undocumented property {k}"));
            validate(spec, sub, v, &format!("{at}.{k}"));
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            validate(spec, items, v, &format!("{at}[{i}]"));
        }
    }
}

/// The path template and the operation (with its method) of an operationId.
fn operation<'a>(spec: &'a Value, id: &str) -> (&'a str, Value) {
    for (template, methods) in spec["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            if op["operationId"] == id {
                return (template, json!({ "method": method, "op": op }));
            }
        }
    }
    panic!("operation {id} is not documented");
}

fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
}

#[test]
fn documented_error_codes_are_the_codes() {
    let spec = spec();
    let documented: BTreeSet<&str> =
        spec["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
    let code: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(documented, code);
}

/// (operationId, method, path, bearer token, body, expected status)
type Call<'a> = (
    &'a str,
    Method,
    &'a str,
    Option<&'a str>,
    Option<Value>,
    u16,
);

#[tokio::test]
async fn every_documented_operation_answers_as_documented() {
    let spec = spec();
    let h = Harness::start().await;
    let claire = h.login(CLAIRE).await;
    let karim = h.login(KARIM).await;
    let calls: Vec<Call> = vec![
        ("health", Method::GET, "/api/health", None, None, 200),
        (
            "login",
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": LEA, "password": estrade_devserver::seed::DEMO_PASSWORD})),
            200,
        ),
        ("me", Method::GET, "/api/me", Some(&claire), None, 200),
        (
            "listLiveSessions",
            Method::GET,
            "/api/live-sessions",
            Some(&claire),
            None,
            200,
        ),
        (
            "getLiveSession",
            Method::GET,
            "/api/live-sessions/1",
            Some(&claire),
            None,
            200,
        ),
        (
            "joinLiveSession",
            Method::POST,
            "/api/live-sessions/1/join",
            Some(&claire),
            None,
            200,
        ),
        (
            "getAttendance",
            Method::GET,
            "/api/live-sessions/1/attendance",
            Some(&claire),
            None,
            200,
        ),
        (
            "leaveLiveSession",
            Method::POST,
            "/api/live-sessions/1/leave",
            Some(&claire),
            None,
            200,
        ),
        (
            "livekitToken",
            Method::POST,
            "/api/livekit/token",
            Some(&claire),
            Some(json!({"room_name": "estrade-course-1-session-1"})),
            200,
        ),
        (
            "startLiveSession",
            Method::POST,
            "/api/live-sessions/2/start",
            Some(&claire),
            None,
            200,
        ),
        (
            "endLiveSession",
            Method::POST,
            "/api/live-sessions/2/end",
            Some(&claire),
            None,
            200,
        ),
        (
            "cancelLiveSession",
            Method::POST,
            "/api/live-sessions/3/cancel",
            Some(&karim),
            Some(json!({"reason": "x"})),
            200,
        ),
        (
            "getLiveSession",
            Method::GET,
            "/api/live-sessions/999",
            Some(&claire),
            None,
            404,
        ),
        (
            "joinLiveSession",
            Method::POST,
            "/api/live-sessions/2/join",
            Some(&claire),
            None,
            409,
        ),
        (
            "logout",
            Method::POST,
            "/api/auth/logout",
            Some(&karim),
            Some(json!({})),
            204,
        ),
    ];
    let refresh_token = h
        .login_reply(THOMAS, estrade_devserver::seed::DEMO_PASSWORD)
        .await
        .ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut calls = calls;
    calls.push((
        "refresh",
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": refresh_token})),
        200,
    ));

    let mut seen = BTreeSet::new();
    for (op_id, method, path, token, body, status) in calls {
        // The operation of that id, documented at a path template matching this request.
        let (template, op) = operation(&spec, op_id);
        assert!(
            matches(template, path),
            "{op_id}: {path} does not match {template}"
        );
        assert_eq!(
            op["method"],
            method.as_str().to_lowercase(),
            "{op_id}: method"
        );
        let op = &op["op"];
        seen.insert(op_id);

        let reply = h.request(method.clone(), path, token, body).await;
        assert_eq!(reply.status.as_u16(), status, "{op_id}: {}", reply.body);
        let documented = &op["responses"][status.to_string()];
        assert!(
            documented.is_object(),
            "{op_id}: status {status} is not documented"
        );
        if let Some(schema) = documented.pointer("/content/application~1json/schema") {
            validate(&spec, schema, &reply.body, op_id);
        }
    }
    let all: BTreeSet<&str> = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|p| p.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    assert_eq!(seen, all, "every documented operation is exercised here");
}
