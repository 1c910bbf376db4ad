//! The pipeline every proxied call goes through, one stage per module:
//! 1. [`authenticate`]: a router layer; the handler receives an [`Authenticated`] call;
//! 2. [`admit::refusal_while_metering_is_backed_up`]: back-pressure from the emitter;
//! 3. [`body`]: read and validate the body (size, time, model id, model allow-list);
//! 4. [`admit`]: admit against limits (a limit refusal is metered);
//! 5. [`forward`]: forward to the model runtime and answer;
//! 6. [`meter`] and [`stream_meter`]: settle the admission and record the event.
//!
//! Modules depend only on the ones below them in this list (and on [`start`] and
//! [`response_headers`]), never back.

pub mod admit;
pub mod authenticate;
pub mod body;
pub mod detach;
pub mod forward;
pub mod meter;
pub mod response_headers;
pub mod start;
pub mod stream_meter;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use schemas::Operation;

pub use authenticate::Authenticated;
pub use body::{ClientModel, ModelSource};

use crate::auth::Caller;
use crate::call::meter::EventDraft;
use crate::call::response_headers::{with_rate_limit, with_request_id};
use crate::call::start::CallStart;
use crate::error_response::ApiError;
use crate::state::ProxyState;
use crate::upstream::ModelInvocation;

thread_local! {
    /// The model ids this thread's calls named lately, as shared names.
    static MODEL_NAMES: std::cell::RefCell<schemas::name::Names> =
        std::cell::RefCell::new(schemas::name::Names::default());
}

/// A model id as the name its usage events carry: calls naming one model share one copy.
fn model_name(model_id: &str) -> schemas::Name {
    MODEL_NAMES.with(|names| names.borrow_mut().name(model_id))
}

/// Runs one authenticated call through the stages.
pub async fn handle_call(
    state: ProxyState,
    call: Authenticated,
    request: Request,
    operation: Operation,
    source: ModelSource,
) -> Response {
    let Authenticated { caller, start } = call;
    let (parts, body) = request.into_parts();
    let api = source.surface();
    if let Some(refusal) =
        admit::refusal_while_metering_is_backed_up(&state, &caller, &start.request_id)
    {
        return refusal;
    }
    let validated =
        match body::read_and_validate(&state.config, &caller, &parts.headers, body, source).await {
            Ok(validated) => validated,
            Err(error) => return refuse_before_admission(&state, &caller, &start, error).await,
        };
    let operation = validated.operation.unwrap_or(operation);
    let client = validated.client.clone();
    let draft = EventDraft {
        start,
        customer_id: caller.customer_name(),
        key_id: caller.key_name(),
        model_id: model_name(&validated.model_id),
        operation,
        api,
        request_bytes: validated.request_bytes,
    };
    let admitted = match admit::admit(&state, &caller, &draft, &validated.model_body).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    let invocation = ModelInvocation {
        operation,
        model_id: validated.model_id,
        body: validated.model_body,
        headers: forward::forwarded_headers(&parts.headers, operation),
    };
    let mut response =
        forward::forward_and_meter(&state, draft, admitted.settlement, invocation).await;
    if let Some(client) = client {
        response.extensions_mut().insert(client);
    }
    with_rate_limit(response, admitted.rate)
}

/// The answer to a call refused before admission (a bad body, a model not allowed): the
/// error, with the request id and the caller's limits as they stand.
async fn refuse_before_admission(
    state: &ProxyState,
    caller: &Caller,
    start: &CallStart,
    error: ApiError,
) -> Response {
    let rate = state
        .limiter
        .peek(&caller.customer, start.accepted_at)
        .await;
    with_rate_limit(
        with_request_id(error.into_response(), &start.request_id),
        rate,
    )
}
