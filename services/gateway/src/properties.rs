//! Property tests of the input path: the line splitter and the validator, over arbitrary bytes
//! cut into arbitrary pieces and over valid files with arbitrary custom ids.

use crate::lines::{Line, LineSplitter};
use crate::validate::{Limits, Validation, Validator};
use nightshift_shared::openai::{Endpoint, InputLine};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Splits `data` fed in pieces at `cuts`; lines as (number, Ok(bytes) | Err(len)).
fn split(data: &[u8], cuts: &[usize], max: usize) -> Vec<(u64, Result<Vec<u8>, u64>)> {
    let mut out = Vec::new();
    let mut f = |line: Line<'_>| -> Result<(), ()> {
        out.push(match line {
            Line::Text { number, bytes } => (number, Ok(bytes.to_vec())),
            Line::TooLong { number, len } => (number, Err(len)),
        });
        Ok(())
    };
    let mut splitter = LineSplitter::new(max);
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    cuts.sort_unstable();
    let mut at = 0;
    for cut in cuts.into_iter().chain([data.len()]) {
        splitter.feed(&data[at..cut], &mut f).unwrap();
        at = cut;
    }
    splitter.finish(&mut f).unwrap();
    out
}

/// What splitting the whole at once on `\n` gives.
fn reference(data: &[u8], max: usize) -> Vec<(u64, Result<Vec<u8>, u64>)> {
    let mut parts: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    if parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let line = if p.len() > max { Err(p.len() as u64) } else { Ok(p.to_vec()) };
            (i as u64 + 1, line)
        })
        .collect()
}

fn validate(file: &[u8], limits: Limits) -> Validation {
    let mut validator = Validator::new(Endpoint::ChatCompletions, limits);
    let mut splitter = LineSplitter::new(limits.max_line_bytes);
    let mut f = |l: Line<'_>| -> Result<(), ()> {
        validator.line(l);
        Ok(())
    };
    splitter.feed(file, &mut f).unwrap();
    splitter.finish(&mut f).unwrap();
    validator.finish(file.len() as u64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn lines_do_not_depend_on_how_the_stream_is_cut(
        data in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'a'), any::<u8>()], 0..600),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        max in 1usize..64,
    ) {
        prop_assert_eq!(split(&data, &cuts, max), reference(&data, max));
    }

    #[test]
    fn every_valid_request_is_in_exactly_one_chunk_in_order(
        ids in proptest::collection::hash_set(any::<String>().prop_filter("non-empty", |s| !s.is_empty() && s.len() <= 512), 1..80),
        blanks in proptest::collection::vec(any::<bool>(), 80),
        chunk_size in 1u32..12,
        chunk_max_bytes in 200usize..4000,
    ) {
        let mut file = String::new();
        let mut lines = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            if blanks[i] {
                file.push('\n');
            }
            let line = json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions",
                              "body": {"model": "m", "messages": [{"role": "user", "content": id}]}});
            file.push_str(&line.to_string());
            file.push('\n');
            lines.push(file.matches('\n').count() as i32);
        }
        let limits = Limits { max_line_bytes: 1 << 20, max_requests: 1000, chunk_size, chunk_max_bytes };
        let Validation::Valid { total, chunks, .. } = validate(file.as_bytes(), limits) else {
            return Err(TestCaseError::fail("a valid file failed validation"));
        };
        prop_assert_eq!(total, ids.len() as u64);
        let mut covered = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            prop_assert_eq!(chunk.chunk_index, i as i32);
            prop_assert!(chunk.request_count >= 1 && chunk.request_count as u32 <= chunk_size);
            let inside: Vec<i32> = lines.iter().copied()
                .filter(|l| (chunk.first_line..=chunk.last_line).contains(l)).collect();
            prop_assert_eq!(inside.len(), chunk.request_count as usize);
            covered.extend(inside);
        }
        prop_assert_eq!(covered, lines);
    }

    #[test]
    fn any_bytes_validate_without_panicking_and_errors_name_real_lines(
        data in proptest::collection::vec(prop_oneof![
            Just(b'\n'), Just(b'{'), Just(b'}'), Just(b'"'), Just(b'\\'), Just(b':'), any::<u8>()
        ], 0..400),
    ) {
        let limits = Limits { max_line_bytes: 100, max_requests: 50, chunk_size: 3, chunk_max_bytes: 500 };
        let lines = data.split(|b| *b == b'\n').count() as u64;
        if let Validation::Invalid(errors) = validate(&data, limits) {
            prop_assert!(!errors.data.is_empty());
            for error in errors.data {
                prop_assert!(error.line.is_none_or(|l| l >= 1 && l <= lines), "{:?}", error);
                // Whatever the input, an error is storable in JSONB: no NUL in its text.
                prop_assert!(!error.message.contains('\0'), "{:?}", error.message);
            }
        }
    }

    #[test]
    fn a_valid_line_keeps_its_custom_id_byte_for_byte(id in any::<String>().prop_filter("non-empty", |s| !s.is_empty() && s.len() <= 512)) {
        let line = json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions",
                          "body": {"model": "m"}}).to_string();
        let parsed: InputLine<'_> = serde_json::from_str(&line).unwrap();
        prop_assert_eq!(parsed.custom_id, Some(Value::String(id)));
    }
}
