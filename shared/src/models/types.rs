//! Provider-neutral request and response types.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One chat turn: a system prompt and a user message, as every job kind uses them.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub system: String,
    pub user: String,
    pub max_output_tokens: u32,
    pub temperature: f32,
    /// Our result schema. When set, the model is asked for a single JSON object matching it: the
    /// schema is appended to the system prompt (every provider) and the provider's JSON mode is
    /// switched on where it has one (OpenAI-style `response_format`, Gemini `responseMimeType`).
    pub json_schema: Option<serde_json::Value>,
}

impl ChatRequest {
    /// The system prompt as sent: with the JSON instruction and schema appended when JSON is asked for.
    pub fn system_prompt(&self) -> String {
        match &self.json_schema {
            None => self.system.clone(),
            Some(schema) => format!(
                "{}\n\nRespond with a single JSON object only (no prose, no code fences) that conforms to this \
                 JSON Schema:\n{schema}",
                self.system.trim_end()
            ),
        }
    }

    pub fn wants_json(&self) -> bool {
        self.json_schema.is_some()
    }

    /// The temperature as a JSON number printed as written (`0.2`, not `0.20000000298023224`).
    pub(crate) fn temperature_json(&self) -> serde_json::Value {
        self.temperature
            .to_string()
            .parse::<f64>()
            .map_or(serde_json::Value::Null, Into::into)
    }
}

/// A model's answer with its usage, as reported by the provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub text: String,
    /// Prompt tokens billed (for Anthropic including cache reads and writes).
    pub input_tokens: u64,
    /// Completion tokens billed (for Gemini including thinking tokens).
    pub output_tokens: u64,
    /// The model that answered, as the provider names it (falls back to the configured name).
    pub model: String,
    pub provider: ProviderKind,
    /// From sending the request to having the parsed body.
    pub latency: Duration,
}

/// Which API dialect and vendor a provider is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProviderKind {
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "azure_openai")]
    AzureOpenAi,
    #[serde(rename = "deepseek")]
    DeepSeek,
    #[serde(rename = "ollama")]
    Ollama,
    #[serde(rename = "openai_compatible")]
    OpenAiCompatible,
    #[serde(rename = "anthropic")]
    Anthropic,
    #[serde(rename = "gemini")]
    Gemini,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 7] = [
        ProviderKind::OpenAi,
        ProviderKind::AzureOpenAi,
        ProviderKind::DeepSeek,
        ProviderKind::Ollama,
        ProviderKind::OpenAiCompatible,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
    ];

    /// The snake_case name used in serde, metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::AzureOpenAi => "azure_openai",
            ProviderKind::DeepSeek => "deepseek",
            ProviderKind::Ollama => "ollama",
            ProviderKind::OpenAiCompatible => "openai_compatible",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_serde_and_display_agree() {
        for kind in ProviderKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<ProviderKind>(&json).unwrap(), kind);
        }
    }

    #[test]
    fn system_prompt_carries_schema_only_when_json_is_asked() {
        let mut req = ChatRequest {
            system: "You review code.".into(),
            user: "diff".into(),
            max_output_tokens: 10,
            temperature: 0.0,
            json_schema: None,
        };
        assert_eq!(req.system_prompt(), "You review code.");
        req.json_schema = Some(serde_json::json!({"type": "object", "required": ["summary"]}));
        let sys = req.system_prompt();
        assert!(sys.starts_with("You review code.\n\n") && sys.contains("JSON") && sys.contains("\"summary\""));
    }
}
