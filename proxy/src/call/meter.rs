//! The meter stage: what a call's usage event says, built without side effects, and the
//! settlement of its admission with the tokens it used (an explicit step of its own).
//!
//! The event is recorded through [`crate::emitter::EmitterHandle::record`], which stamps
//! `proxy_instance` and `instance_seq` and decides how durable it must be before the
//! client is answered.

use schemas::bedrock_usage::TokenUsage;
use schemas::usage_event::truncate_to_millis;
use schemas::{
    ApiSurface, Name, Operation, Outcome, RequestId, USAGE_EVENT_SCHEMA_VERSION, UsageEvent,
};

use crate::admission::Settlement;
use crate::call::start::CallStart;
use crate::emitter::ClosingWrite;

/// What is known about a call before it is answered.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub start: CallStart,
    pub customer_id: Name,
    pub key_id: Name,
    pub model_id: Name,
    pub operation: Operation,
    /// The API the customer called.
    pub api: ApiSurface,
    pub request_bytes: u64,
}

/// What the answer adds to the event.
#[derive(Debug, Clone, Default)]
pub struct UpstreamFacts {
    pub upstream_request_id: Option<RequestId>,
    pub upstream_latency_ms: Option<u64>,
    pub usage: TokenUsage,
}

/// How the client's answer ended, for the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerFacts {
    pub status: u16,
    pub outcome: Outcome,
    pub response_bytes: u64,
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The usage event of a call. Pure: `proxy_instance` and `instance_seq` are left empty
/// for the emitter to stamp when it records the event; `latency_ms` is measured now.
pub fn call_event(draft: EventDraft, answer: AnswerFacts, upstream: UpstreamFacts) -> UsageEvent {
    UsageEvent {
        event_id: draft.start.event_id,
        schema_version: USAGE_EVENT_SCHEMA_VERSION,
        occurred_at: truncate_to_millis(draft.start.accepted_at),
        customer_id: draft.customer_id,
        key_id: draft.key_id,
        request_id: draft.start.request_id,
        upstream_request_id: upstream.upstream_request_id,
        model_id: draft.model_id,
        operation: draft.operation,
        api: Some(draft.api),
        status: answer.status,
        outcome: answer.outcome,
        input_tokens: upstream.usage.input_tokens,
        output_tokens: upstream.usage.output_tokens,
        cache_read_tokens: upstream.usage.cache_read_tokens,
        cache_write_tokens: upstream.usage.cache_write_tokens,
        latency_ms: millis(draft.start.started.elapsed()),
        upstream_latency_ms: upstream.upstream_latency_ms,
        request_bytes: draft.request_bytes,
        response_bytes: answer.response_bytes,
        proxy_instance: Name::default(),
        instance_seq: 0,
    }
}

/// Settles an admitted call with the tokens it used (input plus output). Returns the
/// store write a strict reservation still needs, for the emitter to run with the event.
pub fn settle_admission(settlement: Settlement, usage: &TokenUsage) -> Option<ClosingWrite> {
    settlement.settle(usage.input_tokens.saturating_add(usage.output_tokens))
}

/// How the status of an answer from Bedrock is classified: anything but 2xx is an
/// `upstream_error` (Bedrock's throttling, validation, model and service errors alike).
pub fn outcome_for_status(status: u16) -> Outcome {
    if (200..=299).contains(&status) {
        Outcome::Success
    } else {
        Outcome::UpstreamError
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(outcome_for_status(200), Outcome::Success);
        assert_eq!(outcome_for_status(400), Outcome::UpstreamError);
        assert_eq!(outcome_for_status(404), Outcome::UpstreamError);
        assert_eq!(outcome_for_status(429), Outcome::UpstreamError);
        assert_eq!(outcome_for_status(500), Outcome::UpstreamError);
        assert_eq!(outcome_for_status(503), Outcome::UpstreamError);
    }

    #[test]
    fn building_an_event_leaves_the_instance_fields_to_the_emitter() {
        let draft = EventDraft {
            start: CallStart::now(),
            customer_id: "c".into(),
            key_id: "k".into(),
            model_id: "m".into(),
            operation: Operation::Converse,
            api: ApiSurface::OpenAi,
            request_bytes: 12,
        };
        let answer = AnswerFacts {
            status: 200,
            outcome: Outcome::Success,
            response_bytes: 34,
        };
        let event = call_event(draft.clone(), answer, UpstreamFacts::default());
        assert_eq!(event.event_id, draft.start.event_id);
        assert_eq!(event.request_id, draft.start.event_id.to_string());
        assert_eq!((event.request_bytes, event.response_bytes), (12, 34));
        assert_eq!(event.api, Some(ApiSurface::OpenAi));
        assert_eq!((event.proxy_instance.as_str(), event.instance_seq), ("", 0));
    }
}
