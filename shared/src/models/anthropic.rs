//! Anthropic Messages API: POST {base}/v1/messages with `x-api-key` and `anthropic-version`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::client::Parsed;
use super::error::ProviderError;
use super::types::ChatRequest;

pub(crate) const API_VERSION: &str = "2023-06-01";

/// Anthropic has no JSON switch in this API: the schema goes in the system prompt.
pub(crate) fn body(req: &ChatRequest, model: &str) -> Value {
    let mut body = json!({
        "model": model,
        "max_tokens": req.max_output_tokens,
        "messages": [{"role": "user", "content": req.user}],
        "temperature": req.temperature_json(),
    });
    let system = req.system_prompt();
    if !system.is_empty() {
        body["system"] = system.into();
    }
    body
}

#[derive(Deserialize)]
struct Message {
    model: Option<String>,
    content: Vec<Block>,
    stop_reason: Option<String>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

/// A `message` object: the `text` blocks concatenated; input tokens include cache writes and reads.
pub(crate) fn parse(body: Value) -> Result<Parsed, ProviderError> {
    let message: Message = serde_json::from_value(body)
        .map_err(|e| ProviderError::InvalidResponse(format!("not a message object: {e}")))?;
    let text: String = message
        .content
        .iter()
        .filter(|b| b.kind == "text")
        .filter_map(|b| b.text.as_deref())
        .collect();
    if text.trim().is_empty() {
        let reason = message.stop_reason.unwrap_or_else(|| "none".into());
        return Err(ProviderError::InvalidResponse(format!(
            "no text content (stop_reason {reason})"
        )));
    }
    let (input_tokens, output_tokens) = message.usage.map_or((0, 0), |u| {
        let cached = u.cache_creation_input_tokens.unwrap_or(0) + u.cache_read_input_tokens.unwrap_or(0);
        (u.input_tokens + cached, u.output_tokens)
    });
    Ok(Parsed {
        text,
        input_tokens,
        output_tokens,
        model: message.model,
    })
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{body_partial_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::super::test_support::{assert_error_classification, config, request};
    use super::super::{ProviderKind, build};
    use super::*;

    /// A message object as documented in Anthropic's Messages API reference.
    fn message(blocks: Value) -> Value {
        json!({
            "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5-20251001",
            "content": blocks,
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {
                "input_tokens": 2095,
                "output_tokens": 503,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 5,
                "service_tier": "standard"
            }
        })
    }

    fn anthropic_error(status: u16, message: &str) -> Value {
        let kind = match status {
            400 => "invalid_request_error",
            401 => "authentication_error",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        };
        json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})
    }

    fn anthropic(server: &MockServer) -> crate::models::ProviderConfig {
        config(
            ProviderKind::Anthropic,
            &server.uri(),
            Some("sk-ant-test"),
            "claude-haiku-4-5",
        )
    }

    #[tokio::test]
    async fn round_trip() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/messages"))
            .and(header("x-api-key", "sk-ant-test"))
            .and(header("anthropic-version", "2023-06-01"))
            .and(header("content-type", "application/json"))
            .and(body_partial_json(json!({
                "model": "claude-haiku-4-5",
                "max_tokens": 512,
                "temperature": 0.2,
                "messages": [{"role": "user", "content": "Analyse this repository."}]
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(message(json!([
                {"type": "thinking", "thinking": "Let me look.", "signature": "EqQB"},
                {"type": "text", "text": "{\"summary\":"},
                {"type": "text", "text": "\"ok\"}"}
            ]))))
            .expect(1)
            .mount(&server)
            .await;
        let cfg = anthropic(&server);
        let reply = build(&cfg, reqwest::Client::new()).chat(&request(true)).await.unwrap();
        assert_eq!(reply.text, "{\"summary\":\"ok\"}");
        assert_eq!((reply.input_tokens, reply.output_tokens), (2100, 503));
        assert_eq!(
            (reply.model.as_str(), reply.provider),
            ("claude-haiku-4-5-20251001", ProviderKind::Anthropic)
        );
        let sent: Value = server.received_requests().await.unwrap()[0].body_json().unwrap();
        let system = sent["system"].as_str().unwrap();
        assert!(system.starts_with("You are a senior DevOps reviewer.") && system.contains("JSON Schema"));
        assert!(sent.get("response_format").is_none());
    }

    #[tokio::test]
    async fn overloaded_529_is_a_server_error() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(529).set_body_json(anthropic_error(529, "Overloaded")))
            .mount(&server)
            .await;
        let cfg = anthropic(&server);
        let error = build(&cfg, reqwest::Client::new())
            .chat(&request(false))
            .await
            .unwrap_err();
        assert_eq!(error, ProviderError::Server { status: 529 });
        assert!(error.is_fallback_worthy());
    }

    #[test]
    fn refusal_without_text_is_invalid() {
        let mut refused = message(json!([]));
        refused["stop_reason"] = "refusal".into();
        assert!(matches!(parse(refused), Err(ProviderError::InvalidResponse(m)) if m.contains("refusal")));
    }

    #[tokio::test]
    async fn errors_are_classified() {
        let server = MockServer::start().await;
        let cfg = anthropic(&server);
        let success = message(json!([{"type": "text", "text": "ok"}]));
        assert_error_classification(&server, &cfg, &success, anthropic_error).await;
    }
}
