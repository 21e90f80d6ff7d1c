//! Google Gemini generateContent: POST {base}/v1beta/models/{model}:generateContent with
//! `x-goog-api-key`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::client::Parsed;
use super::error::ProviderError;
use super::types::ChatRequest;

/// The model is in the URL, not the body. JSON mode is `responseMimeType: application/json`.
pub(crate) fn body(req: &ChatRequest) -> Value {
    let mut body = json!({
        "contents": [{"role": "user", "parts": [{"text": req.user}]}],
        "generationConfig": {"maxOutputTokens": req.max_output_tokens, "temperature": req.temperature_json()},
    });
    let system = req.system_prompt();
    if !system.is_empty() {
        body["systemInstruction"] = json!({"parts": [{"text": system}]});
    }
    if req.wants_json() {
        body["generationConfig"]["responseMimeType"] = "application/json".into();
    }
    body
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Generated {
    #[serde(default)]
    candidates: Vec<Candidate>,
    usage_metadata: Option<UsageMetadata>,
    model_version: Option<String>,
    prompt_feedback: Option<PromptFeedback>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
struct Part {
    text: Option<String>,
    #[serde(default)]
    thought: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct UsageMetadata {
    prompt_token_count: u64,
    candidates_token_count: u64,
    thoughts_token_count: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

/// `candidates[0].content.parts[].text` (thought parts skipped); output tokens include thinking
/// tokens, which are billed as output. A blocked prompt or a candidate stopped for SAFETY,
/// RECITATION … without text is an invalid response.
pub(crate) fn parse(body: Value) -> Result<Parsed, ProviderError> {
    let generated: Generated = serde_json::from_value(body)
        .map_err(|e| ProviderError::InvalidResponse(format!("not a generateContent response: {e}")))?;
    let Some(candidate) = generated.candidates.into_iter().next() else {
        let reason = generated
            .prompt_feedback
            .and_then(|f| f.block_reason)
            .unwrap_or_else(|| "none given".into());
        return Err(ProviderError::InvalidResponse(format!(
            "no candidates (prompt blocked: {reason})"
        )));
    };
    let text: String = candidate
        .content
        .map(|c| {
            c.parts
                .into_iter()
                .filter(|p| !p.thought)
                .filter_map(|p| p.text)
                .collect()
        })
        .unwrap_or_default();
    if text.trim().is_empty() {
        let reason = candidate.finish_reason.unwrap_or_else(|| "none".into());
        return Err(ProviderError::InvalidResponse(format!(
            "no text in the candidate (finishReason {reason})"
        )));
    }
    let usage = generated.usage_metadata.unwrap_or_default();
    Ok(Parsed {
        text,
        input_tokens: usage.prompt_token_count,
        output_tokens: usage.candidates_token_count + usage.thoughts_token_count,
        model: generated.model_version,
    })
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{body_partial_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::super::test_support::{assert_error_classification, config, request};
    use super::super::{ProviderKind, build};
    use super::*;

    /// A GenerateContentResponse as documented in the Gemini API reference.
    fn generated(parts: Value, finish_reason: &str) -> Value {
        json!({
            "candidates": [{
                "content": {"parts": parts, "role": "model"},
                "finishReason": finish_reason,
                "avgLogprobs": -0.0312,
                "index": 0
            }],
            "usageMetadata": {
                "promptTokenCount": 8,
                "candidatesTokenCount": 12,
                "totalTokenCount": 44,
                "thoughtsTokenCount": 24,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}]
            },
            "modelVersion": "gemini-2.5-flash",
            "responseId": "mAitaLmkHPPlz7IPvtfUqQ4"
        })
    }

    fn gemini_error(status: u16, message: &str) -> Value {
        let name = match status {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            429 => "RESOURCE_EXHAUSTED",
            503 => "UNAVAILABLE",
            _ => "INTERNAL",
        };
        json!({"error": {"code": status, "message": message, "status": name}})
    }

    #[tokio::test]
    async fn round_trip() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1beta/models/gemini-2.5-flash:generateContent"))
            .and(header("x-goog-api-key", "AIza-test"))
            .and(body_partial_json(json!({
                "contents": [{"role": "user", "parts": [{"text": "Analyse this repository."}]}],
                "generationConfig": {"maxOutputTokens": 512, "temperature": 0.2, "responseMimeType": "application/json"}
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(generated(
                json!([{"text": "planning…", "thought": true}, {"text": "{\"summary\":"}, {"text": "\"ok\"}"}]),
                "STOP",
            )))
            .expect(1)
            .mount(&server)
            .await;
        let cfg = config(
            ProviderKind::Gemini,
            &server.uri(),
            Some("AIza-test"),
            "gemini-2.5-flash",
        );
        let reply = build(&cfg, reqwest::Client::new()).chat(&request(true)).await.unwrap();
        assert_eq!(reply.text, "{\"summary\":\"ok\"}");
        assert_eq!((reply.input_tokens, reply.output_tokens), (8, 36));
        assert_eq!(
            (reply.model.as_str(), reply.provider),
            ("gemini-2.5-flash", ProviderKind::Gemini)
        );
        let sent: Value = server.received_requests().await.unwrap()[0].body_json().unwrap();
        let system = sent["systemInstruction"]["parts"][0]["text"].as_str().unwrap();
        assert!(system.starts_with("You are a senior DevOps reviewer.") && system.contains("JSON Schema"));
        assert!(sent.get("model").is_none());
    }

    #[test]
    fn safety_stop_and_blocked_prompt_are_invalid() {
        let mut safety = generated(json!([]), "SAFETY");
        safety["candidates"][0]["content"] = json!({"role": "model"});
        safety["candidates"][0]["safetyRatings"] =
            json!([{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true}]);
        assert!(matches!(parse(safety), Err(ProviderError::InvalidResponse(m)) if m.contains("SAFETY")));
        let recitation = generated(json!([]), "RECITATION");
        assert!(matches!(parse(recitation), Err(ProviderError::InvalidResponse(m)) if m.contains("RECITATION")));
        let blocked = json!({
            "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
            "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
            "modelVersion": "gemini-2.5-flash"
        });
        assert!(
            matches!(parse(blocked), Err(ProviderError::InvalidResponse(m)) if m.contains("prompt blocked: SAFETY"))
        );
    }

    #[tokio::test]
    async fn errors_are_classified() {
        let server = MockServer::start().await;
        let cfg = config(
            ProviderKind::Gemini,
            &server.uri(),
            Some("AIza-test"),
            "gemini-2.5-flash",
        );
        assert_error_classification(&server, &cfg, &generated(json!([{"text": "ok"}]), "STOP"), gemini_error).await;
    }
}
