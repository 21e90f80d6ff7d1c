//! OpenAI Chat Completions, and every server that speaks it: OpenAI, Azure OpenAI, DeepSeek,
//! Ollama's `/v1`, vLLM … (the URL and auth header differ; [`super::client::build`] sets them).

use serde::Deserialize;
use serde_json::{Value, json};

use super::client::Parsed;
use super::config::MaxTokensField;
use super::error::ProviderError;
use super::types::ChatRequest;

pub(crate) fn body(req: &ChatRequest, model: &str, max_tokens: MaxTokensField) -> Value {
    let mut messages = Vec::new();
    let system = req.system_prompt();
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.push(json!({"role": "user", "content": req.user}));
    let mut body = json!({"model": model, "messages": messages, "temperature": req.temperature_json()});
    body[max_tokens.as_str()] = req.max_output_tokens.into();
    if req.wants_json() {
        body["response_format"] = json!({"type": "json_object"});
    }
    body
}

#[derive(Deserialize)]
struct Completion {
    model: Option<String>,
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
}

/// A `chat.completion` object: `choices[0].message.content`, `usage.prompt_tokens/completion_tokens`
/// (usage absent → 0, as some compatible servers omit it).
pub(crate) fn parse(body: Value) -> Result<Parsed, ProviderError> {
    let completion: Completion = serde_json::from_value(body)
        .map_err(|e| ProviderError::InvalidResponse(format!("not a chat.completion object: {e}")))?;
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| ProviderError::InvalidResponse("no choices".into()))?;
    let text = match (choice.message.content, choice.message.refusal) {
        (Some(text), _) if !text.trim().is_empty() => text,
        (_, Some(refusal)) => return Err(ProviderError::InvalidResponse(format!("the model refused: {refusal}"))),
        _ => {
            let reason = choice.finish_reason.unwrap_or_else(|| "none".into());
            return Err(ProviderError::InvalidResponse(format!(
                "no message content (finish_reason {reason})"
            )));
        }
    };
    let (input_tokens, output_tokens) = completion
        .usage
        .map_or((0, 0), |u| (u.prompt_tokens, u.completion_tokens));
    Ok(Parsed {
        text,
        input_tokens,
        output_tokens,
        model: completion.model,
    })
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{body_partial_json, header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::super::test_support::{assert_error_classification, config, request};
    use super::super::{ProviderKind, build};
    use super::*;

    /// A chat.completion object as documented in OpenAI's API reference.
    fn completion(content: &str) -> Value {
        json!({
            "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
            "object": "chat.completion",
            "created": 1741569952,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": 19,
                "completion_tokens": 10,
                "total_tokens": 29,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0, "audio_tokens": 0,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0
                }
            },
            "service_tier": "default",
            "system_fingerprint": "fp_06737a9306"
        })
    }

    fn openai_error(status: u16, message: &str) -> Value {
        let kind = if status == 429 {
            "rate_limit_exceeded"
        } else {
            "invalid_request_error"
        };
        json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
    }

    #[tokio::test]
    async fn openai_round_trip() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(header("authorization", "Bearer sk-test-key"))
            .and(header("content-type", "application/json"))
            .and(body_partial_json(json!({
                "model": "gpt-4o-mini",
                "messages": [{"role": "system"}, {"role": "user", "content": "Analyse this repository."}],
                "max_completion_tokens": 512,
                "temperature": 0.2,
                "response_format": {"type": "json_object"}
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(completion("{\"summary\":\"ok\"}")))
            .expect(1)
            .mount(&server)
            .await;
        let cfg = config(
            ProviderKind::OpenAi,
            &format!("{}/v1", server.uri()),
            Some("sk-test-key"),
            "gpt-4o-mini",
        );
        let provider = build(&cfg, reqwest::Client::new());
        assert_eq!(
            (provider.kind(), provider.model()),
            (ProviderKind::OpenAi, "gpt-4o-mini")
        );
        let reply = provider.chat(&request(true)).await.unwrap();
        assert_eq!(reply.text, "{\"summary\":\"ok\"}");
        assert_eq!((reply.input_tokens, reply.output_tokens), (19, 10));
        assert_eq!(
            (reply.model.as_str(), reply.provider),
            ("gpt-4o-mini-2024-07-18", ProviderKind::OpenAi)
        );
        let sent: Value = server.received_requests().await.unwrap()[0].body_json().unwrap();
        assert!(sent["messages"][0]["content"].as_str().unwrap().contains("JSON Schema"));
        assert!(sent.get("max_tokens").is_none());
    }

    #[tokio::test]
    async fn deepseek_uses_max_tokens_and_no_json_mode_unless_asked() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/chat/completions"))
            .and(header("authorization", "Bearer ds-key"))
            .and(body_partial_json(json!({"model": "deepseek-chat", "max_tokens": 512})))
            .respond_with(ResponseTemplate::new(200).set_body_json(completion("plain text")))
            .expect(1)
            .mount(&server)
            .await;
        let mut cfg = config(ProviderKind::DeepSeek, &server.uri(), Some("ds-key"), "deepseek-chat");
        cfg.max_tokens_field = MaxTokensField::MaxTokens;
        let reply = build(&cfg, reqwest::Client::new()).chat(&request(false)).await.unwrap();
        assert_eq!(
            (reply.text.as_str(), reply.provider),
            ("plain text", ProviderKind::DeepSeek)
        );
        let sent: Value = server.received_requests().await.unwrap()[0].body_json().unwrap();
        assert!(sent.get("response_format").is_none() && sent.get("max_completion_tokens").is_none());
    }

    #[tokio::test]
    async fn ollama_sends_no_auth_header() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(body_partial_json(json!({"model": "llama3.2"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(completion("hi")))
            .expect(1)
            .mount(&server)
            .await;
        let cfg = config(ProviderKind::Ollama, &format!("{}/v1", server.uri()), None, "llama3.2");
        let reply = build(&cfg, reqwest::Client::new()).chat(&request(false)).await.unwrap();
        assert_eq!(reply.text, "hi");
        let received = server.received_requests().await.unwrap();
        assert!(received[0].headers.get("authorization").is_none());
    }

    #[tokio::test]
    async fn azure_uses_deployment_url_api_version_and_api_key_header() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/openai/deployments/gpt4o-prod/chat/completions"))
            .and(query_param("api-version", "2024-10-21"))
            .and(header("api-key", "az-key"))
            .respond_with(ResponseTemplate::new(200).set_body_json(completion("from azure")))
            .expect(1)
            .mount(&server)
            .await;
        let vars = [
            ("AZURE_OPENAI_API_KEY", "az-key".to_string()),
            ("AZURE_OPENAI_ENDPOINT", server.uri()),
            ("AZURE_OPENAI_DEPLOYMENT", "gpt4o-prod".to_string()),
        ];
        let cfgs = super::super::ProviderConfig::from_vars(vars.map(|(k, v)| (k.to_string(), v))).unwrap();
        let reply = build(&cfgs[0], reqwest::Client::new())
            .chat(&request(false))
            .await
            .unwrap();
        assert_eq!(
            (reply.text.as_str(), reply.provider),
            ("from azure", ProviderKind::AzureOpenAi)
        );
        let received = server.received_requests().await.unwrap();
        assert!(received[0].headers.get("authorization").is_none());
    }

    #[tokio::test]
    async fn refusal_and_empty_choices_are_invalid_responses() {
        let mut refused = completion("");
        refused["choices"][0]["message"]["content"] = Value::Null;
        refused["choices"][0]["message"]["refusal"] = "I can't help with that.".into();
        assert!(matches!(parse(refused), Err(ProviderError::InvalidResponse(m)) if m.contains("refused")));
        let mut empty = completion("x");
        empty["choices"] = json!([]);
        assert!(matches!(parse(empty), Err(ProviderError::InvalidResponse(_))));
    }

    #[tokio::test]
    async fn errors_are_classified() {
        let server = MockServer::start().await;
        let cfg = config(
            ProviderKind::OpenAi,
            &format!("{}/v1", server.uri()),
            Some("sk-test-key"),
            "gpt-4o-mini",
        );
        assert_error_classification(&server, &cfg, &completion("ok"), openai_error).await;
    }
}
