//! Chat prompts. There is no Jinja engine: the model's `tokenizer.chat_template` is recognised
//! as a known format and rendered by code. Only ChatML is known so far:
//!
//! ```text
//! <|im_start|>system\nYou are …<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n
//! ```
//!
//! Some ChatML templates (SmolLM2's) insert a default system message when the conversation does
//! not start with one; that message is read from the template's string literal.

use super::TokenizerError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// "system", "user" or "assistant".
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage { role: role.into(), content: content.into() }
    }
}

/// A recognised chat format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTemplate {
    /// ChatML, with the system message the template adds when the first message is not one.
    ChatMl { default_system: Option<String> },
}

const IM_START: &str = "<|im_start|>";

impl ChatTemplate {
    /// Recognises a Jinja chat template.
    pub fn detect(template: &str) -> Result<ChatTemplate, TokenizerError> {
        if template.contains(IM_START) && template.contains("<|im_end|>") {
            return Ok(ChatTemplate::ChatMl { default_system: default_system(template) });
        }
        let head: String = template.chars().take(120).collect();
        Err(TokenizerError::UnsupportedChatTemplate(format!("{head}…")))
    }

    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> String {
        match self {
            ChatTemplate::ChatMl { default_system } => {
                let mut out = String::new();
                if let Some(sys) = default_system {
                    if messages.first().is_none_or(|m| m.role != "system") {
                        push_chatml(&mut out, "system", sys);
                    }
                }
                out.push_str(&render_chatml(messages, add_generation_prompt));
                out
            }
        }
    }
}

/// Plain ChatML: `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then
/// `<|im_start|>assistant\n` if `add_generation_prompt`.
pub fn render_chatml(messages: &[ChatMessage], add_generation_prompt: bool) -> String {
    let mut out = String::new();
    for m in messages {
        push_chatml(&mut out, &m.role, &m.content);
    }
    if add_generation_prompt {
        out.push_str(IM_START);
        out.push_str("assistant\n");
    }
    out
}

fn push_chatml(out: &mut String, role: &str, content: &str) {
    out.push_str(IM_START);
    out.push_str(role);
    out.push('\n');
    out.push_str(content);
    out.push_str("<|im_end|>\n");
}

/// The literal system message in `'<|im_start|>system\n…<|im_end|>` (a Jinja string, with a
/// real newline or a `\n` escape), if the template adds one.
fn default_system(template: &str) -> Option<String> {
    for (quote_at, _) in template.match_indices(IM_START) {
        let before = template[..quote_at].chars().next_back();
        let quote = match before {
            Some(q @ ('\'' | '"')) => q,
            _ => continue,
        };
        let rest = &template[quote_at + IM_START.len()..];
        let Some(body) = rest.strip_prefix("system\n").or_else(|| rest.strip_prefix("system\\n")) else { continue };
        let Some(end) = body.find("<|im_end|>") else { continue };
        let text = &body[..end];
        // Only a plain literal: no end of the string (concatenation, variables) before <|im_end|>.
        if text.contains(quote) {
            continue;
        }
        return Some(text.replace("\\n", "\n"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}\
        {{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}\
        {% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}\
        {% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn smollm2_default_system() {
        let t = ChatTemplate::detect(SMOLLM2).unwrap();
        let sys = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
        assert_eq!(t, ChatTemplate::ChatMl { default_system: Some(sys.into()) });
        let user = [ChatMessage::new("user", "Hi")];
        assert_eq!(
            t.render(&user, true),
            format!("<|im_start|>system\n{sys}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        );
        let with_sys = [ChatMessage::new("system", "Be brief."), ChatMessage::new("user", "Hi")];
        assert_eq!(
            t.render(&with_sys, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        );
    }

    #[test]
    fn plain_chatml_and_unsupported() {
        let plain = "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}{% endfor %}";
        assert_eq!(ChatTemplate::detect(plain).unwrap(), ChatTemplate::ChatMl { default_system: None });
        let llama3 = "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>' }}";
        assert!(matches!(ChatTemplate::detect(llama3), Err(TokenizerError::UnsupportedChatTemplate(_))));
    }
}
