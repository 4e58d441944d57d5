//! The main flow end to end: register, create a room, post, read history.

mod common;

use common::{Backend, assert_error, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

async fn register_post_and_read_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.register("ann").await;
    let room = app.create_room(&ann, "general", false).await;
    let first = app.send(&ann, room, "  hello  ").await;
    assert_eq!(first["content"], "hello");
    assert_eq!(first["seq"], 1);
    let (status, page) = app
        .get(&format!("/chat/rooms/{room}/messages"), &ann.access)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.as_array().unwrap().len(), 1);
    let (status, body) = app
        .post(
            &format!("/chat/rooms/{room}/messages/"),
            &ann.access,
            json!({"message": "   "}),
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["error"]["fields"]["message"].is_string());
}

both_backends!(register_post_and_read_back);
