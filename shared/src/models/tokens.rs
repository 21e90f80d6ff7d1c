//! Token counts before a call. OpenAI-style models: the real `o200k_base` BPE (tiktoken-rs ships
//! its data inside the crate, so this works offline); other vendors' models that speak the OpenAI
//! dialect (DeepSeek, Ollama, vLLM) get that count plus 10 %, as their vocabularies are smaller.
//! Anthropic and Gemini publish no offline tokenizer: a calibrated estimate of one token per three
//! characters, on the safe side of their ~3.5 for English and code.

use super::types::{ChatRequest, ProviderKind};

/// Tokens a chat request adds beyond its texts (role markers, message framing), per message.
pub const PER_MESSAGE_OVERHEAD: u64 = 8;

/// How a provider's tokens are counted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tokenizer {
    /// `o200k_base`, times `margin` (1.0 for OpenAI's own models).
    O200k { margin: f64 },
    /// Characters per token.
    Chars { per_token: f64 },
}

impl Tokenizer {
    pub fn for_provider(kind: ProviderKind) -> Tokenizer {
        match kind {
            ProviderKind::OpenAi | ProviderKind::AzureOpenAi => Tokenizer::O200k { margin: 1.0 },
            ProviderKind::DeepSeek | ProviderKind::Ollama | ProviderKind::OpenAiCompatible => {
                Tokenizer::O200k { margin: 1.1 }
            }
            ProviderKind::Anthropic | ProviderKind::Gemini => Tokenizer::Chars { per_token: 3.0 },
        }
    }

    /// Tokens of `text`.
    pub fn count(&self, text: &str) -> u64 {
        match *self {
            Tokenizer::O200k { margin } => {
                let n = tiktoken_rs::o200k_base_singleton().encode_ordinary(text).len() as f64;
                (n * margin).ceil() as u64
            }
            Tokenizer::Chars { per_token } => (text.chars().count() as f64 / per_token).ceil() as u64,
        }
    }

    /// Input tokens of a whole request: system prompt (with the schema) and user message.
    pub fn count_request(&self, req: &ChatRequest) -> u64 {
        self.count(&req.system_prompt()) + self.count(&req.user) + 2 * PER_MESSAGE_OVERHEAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_counts_are_exact_bpe() {
        let t = Tokenizer::for_provider(ProviderKind::OpenAi);
        // o200k_base: "hello world" is two tokens.
        assert_eq!(t.count("hello world"), 2);
        assert_eq!(t.count(""), 0);
        let code = "fn main() {\n    println!(\"hello\");\n}\n".repeat(50);
        let n = t.count(&code);
        assert!(n > 200 && n < code.len() as u64 / 2, "{n}");
        let deepseek = Tokenizer::for_provider(ProviderKind::DeepSeek).count(&code);
        assert_eq!(deepseek, (n as f64 * 1.1).ceil() as u64);
    }

    #[test]
    fn the_estimate_is_on_the_safe_side_of_the_bpe() {
        let text = "word ".repeat(1000) + &"let x = vec![1, 2, 3];\n".repeat(100);
        let bpe = Tokenizer::for_provider(ProviderKind::OpenAi).count(&text);
        let estimate = Tokenizer::for_provider(ProviderKind::Anthropic).count(&text);
        assert!(estimate >= bpe, "{estimate} < {bpe}");
    }
}
