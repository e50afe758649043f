//! Whether the sim "has" a requested model, answering as each Ollama handler does when not.

use crate::error::ApiError;
use crate::models;
use crate::state::SimState;

/// The handler a model name reached; each words a missing model its own way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    /// /api/chat (and /v1/chat/completions): an empty name is 400 "model is required".
    Chat,
    /// /api/generate (and /v1/completions): an empty name is a 404 like any unknown one.
    Generate,
    /// /api/embed (and /v1/embeddings): the unknown-model text differs.
    Embed,
    /// The legacy /api/embeddings: an empty name is 400, an unknown one as on /api/embed.
    Embeddings,
}

impl SimState {
    /// Checks a requested model name and returns it normalised. Unknown models (not in
    /// `models`, unless `any_model`) get Ollama's 404, naming the model exactly as sent.
    pub(crate) fn resolve_model(&self, name: &str, handler: Handler) -> Result<String, ApiError> {
        let missing = || match handler {
            Handler::Embed | Handler::Embeddings => ApiError::ModelNotPulled(name.to_owned()),
            Handler::Chat | Handler::Generate => ApiError::ModelNotFound(name.to_owned()),
        };
        if name.trim().is_empty() {
            return Err(match handler {
                Handler::Chat | Handler::Embeddings => {
                    ApiError::BadRequest("model is required".into())
                }
                // Ollama's name-parse fallback on these handlers is the 404 "model '' not found".
                Handler::Generate | Handler::Embed => ApiError::ModelNotFound(name.to_owned()),
            });
        }
        let normalized = models::normalize(name);
        let config = self.config();
        if config.any_model || config.models.iter().any(|m| models::normalize(m) == normalized) {
            Ok(normalized)
        } else {
            Err(missing())
        }
    }
}
