//! The engine connection helper against the real engine: version negotiation, fail-closed
//! runtime and image checks. Never skipped. (An unreachable engine is tested through the CLI in
//! tests/input.rs, where the process environment can be set safely.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use airlock::sandbox::{Engine, SandboxError};

#[tokio::test]
async fn an_unregistered_runtime_fails_closed_naming_what_is_registered() {
    common::require_engine();
    let engine = Engine::connect().await.expect("connect");
    engine
        .check_runtime("runc")
        .await
        .expect("runc is registered");
    engine
        .check_runtime("runsc")
        .await
        .expect("make engine registers runsc");
    match engine.check_runtime("kata-runtime").await {
        Err(SandboxError::RuntimeMissing { runtime, known }) => {
            assert_eq!(runtime, "kata-runtime");
            assert!(known.iter().any(|k| k == "runc"), "{known:?}");
        }
        other => panic!("expected RuntimeMissing, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_image_is_never_pulled() {
    common::require_engine();
    let engine = Engine::connect().await.expect("connect");
    let err = engine
        .check_image("airlock/never-built:nope")
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::ImageMissing { .. }), "{err}");
    assert!(err.to_string().contains("make images"));
}
