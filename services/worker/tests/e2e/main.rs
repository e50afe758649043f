//! End to end: gateway, queue, worker processes and `ollama-sim`, checking that every request
//! of a batch ends up exactly once in its output or error file, whatever is killed on the way.
//!
//! Every test body runs twice: on the distributed deployment (NATS JetStream, Postgres, worker
//! processes) and on `nightshift standalone` (in-process queue, SQLite, one process a test kills
//! and restarts where the distributed test kills a worker or restarts the gateway).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cancel;
mod faults;
mod outage;
mod pipeline;
mod poison;

const WORKER: &str = env!("CARGO_BIN_EXE_nightshift-worker");

nightshift_testkit::on_both_deployments!(
    pipeline::two_workers_answer_2000_requests_exactly_once_in_input_order,
    pipeline::collector_restarted_mid_batch_loses_and_duplicates_nothing,
    pipeline::embeddings_and_completions_batches_come_back_in_openai_shape,
    faults::killed_workers_chunks_are_redelivered_and_written_once,
    faults::backend_errors_and_timeouts_are_retried_and_final_failures_reported,
    faults::more_in_flight_than_slots_waits_in_the_server_without_timeouts,
    cancel::cancelled_batch_ends_cancelled_with_partial_output,
    cancel::expired_batch_ends_expired_with_partial_output,
    poison::nul_and_odd_characters_in_custom_ids_come_back_byte_for_byte,
    poison::lone_surrogates_and_nul_model_names_fail_validation_with_their_lines,
    poison::embeddings_of_every_size_complete,
    poison::a_result_over_the_limit_is_that_requests_error,
);

nightshift_testkit::distributed_only!(
    outage::postgres_outage_is_a_quick_503_and_the_batch_resumes,
    outage::nats_outage_keeps_the_api_answering_and_loses_nothing,
    outage::nats_cluster_loses_a_follower_and_every_request_is_answered_once,
    outage::nats_cluster_loses_the_stream_leader_and_every_request_is_answered_once,
);
