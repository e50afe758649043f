//! Token log-probabilities of a simulated completion, in the shape of Ollama's
//! `api.Logprob`: one entry per generated token, derived from the request hash.

use serde::Serialize;

use crate::error::ApiError;
use crate::synth::splitmix;

/// The most alternatives a request may ask for (Ollama's check).
const MAX_TOP: i64 = 20;

/// Alternatives offered in `top_logprobs`, besides the token itself.
const ALTERNATIVES: [&str; 8] = [" the", " a", ",", ".", " and", " of", " to", " in"];

/// `api.TokenLogprob`: `bytes` is left out for an empty token, as Ollama does.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bytes: Vec<u8>,
}

/// `api.Logprob`: the token, then up to `top_logprobs` likeliest tokens at that position.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Logprob {
    pub token: String,
    pub logprob: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bytes: Vec<u8>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top_logprobs: Vec<TokenLogprob>,
}

/// Ollama's `top_logprobs` range check, done before the model is even looked up.
pub fn check_top(top_logprobs: i64) -> Result<usize, ApiError> {
    if !(0..=MAX_TOP).contains(&top_logprobs) {
        return Err(ApiError::BadRequest("top_logprobs must be between 0 and 20".into()));
    }
    Ok(top_logprobs as usize)
}

/// Splits `text` into `count` tokens that join back to it: at word starts when the text
/// has exactly that many words (plain generated text), else into even runs of characters
/// (JSON, tool calls, a stop cut); short text ends in empty tokens, like end-of-turn ones.
fn tokens(text: &str, count: usize) -> Vec<String> {
    let starts: Vec<usize> = text
        .char_indices()
        .filter(|&(i, c)| i == 0 || (c == ' ' && i > 0))
        .map(|(i, _)| i)
        .collect();
    if starts.len() == count && !text.is_empty() {
        let mut out = Vec::with_capacity(count);
        for (n, &start) in starts.iter().enumerate() {
            let end = starts.get(n + 1).copied().unwrap_or(text.len());
            out.push(text[start..end].to_owned());
        }
        return out;
    }
    let chars: Vec<char> = text.chars().collect();
    (0..count)
        .map(|i| chars[i * chars.len() / count..(i + 1) * chars.len() / count].iter().collect())
        .collect()
}

/// A log-probability in (-4, 0) from a hash: never 0, so it reads as a real model's.
fn logprob(hash: u64) -> f64 {
    -((hash >> 11) as f64 / (1u64 << 53) as f64 * 4.0).max(1e-4)
}

/// One entry per token of `text` (`count` tokens), each with `top` alternatives whose
/// log-probabilities fall below the chosen token's: the model picked its likeliest token.
pub fn synthesize(seed: u64, text: &str, count: u64, top: usize) -> Vec<Logprob> {
    let entry = |token: String, logprob: f64| TokenLogprob {
        bytes: token.as_bytes().to_vec(),
        token,
        logprob,
    };
    tokens(text, count as usize)
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let h = splitmix(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let lp = logprob(h);
            let mut top_logprobs = Vec::with_capacity(top);
            if top > 0 {
                top_logprobs.push(entry(token.clone(), lp));
            }
            for k in 1..top {
                let alt =
                    ALTERNATIVES[(splitmix(h ^ k as u64) % ALTERNATIVES.len() as u64) as usize];
                let step =
                    0.5 + (splitmix(h.wrapping_add(k as u64)) >> 11) as f64 / (1u64 << 53) as f64;
                let below = top_logprobs.last().map_or(lp, |t: &TokenLogprob| t.logprob);
                top_logprobs.push(entry(format!("{alt}{k}"), below - step));
            }
            Logprob { bytes: token.as_bytes().to_vec(), token, logprob: lp, top_logprobs }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_join_back_to_the_text() {
        let words = tokens("kalo mi rutasen", 3);
        assert_eq!(words, ["kalo", " mi", " rutasen"]);
        let runs = tokens("{\"a\":1}", 3);
        assert_eq!(runs.concat(), "{\"a\":1}");
        assert_eq!(tokens("ab", 4).concat(), "ab");
        assert_eq!(tokens("ab", 4).len(), 4);
    }

    #[test]
    fn alternatives_are_less_likely_and_deterministic() {
        let a = synthesize(9, "kalo mi", 2, 3);
        assert_eq!(a, synthesize(9, "kalo mi", 2, 3));
        for e in &a {
            assert!(e.logprob < 0.0);
            assert_eq!(e.top_logprobs.len(), 3);
            assert_eq!(e.top_logprobs[0].token, e.token);
            assert!(e.top_logprobs.windows(2).all(|w| w[1].logprob < w[0].logprob));
        }
        assert!(check_top(21).is_err() && check_top(-1).is_err() && check_top(20).is_ok());
    }
}
