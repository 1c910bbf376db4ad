//! Who is calling: a bearer admin credential, identified by the control layer
//! (`control::admin_tokens::identify`). A customer's token gets 403, anything else 401; a
//! viewer may only read (GET and HEAD).

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use control::Actor;
use control::admin_tokens::{Presented, identify};
use schemas::AdminRole;

use crate::AdminState;
use crate::error::ApiError;

/// The authenticated caller, for handlers: its audit actor is `admin-api:<name>`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: AdminRole,
}

impl Caller {
    /// The actor the audit trail records.
    pub fn actor(&self) -> Actor {
        Actor::admin_api(&self.name)
    }
}

/// The bearer token of `Authorization: Bearer …`, if that is what was sent.
pub fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

fn reads_only(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// The authority (`host[:port]`) of an `Origin` header, `None` for `null` or a malformed one.
fn origin_authority(origin: &str) -> Option<&str> {
    let (_, rest) = origin.split_once("://")?;
    Some(rest.trim_end_matches('/')).filter(|authority| !authority.is_empty())
}

/// A change sent by a browser from another site: its `Origin` names neither this server's
/// `Host` nor the `X-Forwarded-Host` a load balancer passed on. Clients that are not
/// browsers send no `Origin` and are not concerned. Bearer credentials already keep other
/// sites out (a browser never adds them on its own); this refuses such a request before
/// anything else, whatever it carries.
fn cross_site_change(request: &Request) -> bool {
    if reads_only(request.method()) {
        return false;
    }
    let headers = request.headers();
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Some(authority) = origin.to_str().ok().and_then(origin_authority) else {
        return true;
    };
    let named = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                value
                    .split(',')
                    .any(|host| host.trim().eq_ignore_ascii_case(authority))
            })
    };
    !(named("host") || named("x-forwarded-host"))
}

/// The route layer: refuses changes from other sites (403), identifies the caller, refuses strangers (401), customers (403) and
/// viewers' changes (403), and hands the [`Caller`] to the handler.
pub async fn authorize(
    State(state): State<AdminState>,
    mut request: Request,
    next: Next,
) -> Response {
    if cross_site_change(&request) {
        return ApiError::forbidden(
            "a change sent from another site's page is refused: use the console served by this server, or call the API without an Origin header",
        )
        .into_response();
    }
    let Some(token) = bearer(&request) else {
        return ApiError::unauthorized(
            "the admin API needs an admin credential: send Authorization: Bearer <token> (make one with `tollgate admin-token --name NAME`)",
        )
        .into_response();
    };
    let presented = identify(
        state.ports.admin_credentials.as_ref(),
        state.ports.registry.as_ref(),
        state.configured.as_ref(),
        token,
    )
    .await;
    let caller = match presented {
        Ok(Presented::Admin { name, role }) => Caller { name, role },
        Ok(Presented::CustomerToken) => {
            return ApiError::forbidden(
                "customer tokens cannot use the admin API; use an admin credential",
            )
            .into_response();
        }
        Ok(Presented::Revoked { .. }) => {
            return ApiError::unauthorized(
                "this admin credential was revoked; ask an operator for a new one",
            )
            .into_response();
        }
        Ok(Presented::Unknown) => {
            return ApiError::unauthorized(
                "this credential is not an admin credential of this deployment",
            )
            .into_response();
        }
        Err(error) => return ApiError::from(error).into_response(),
    };
    if !caller.role.may_write() && !reads_only(request.method()) {
        return ApiError::forbidden(format!(
            "admin credential {} is a viewer and can only read; use an admin credential to make changes",
            caller.name
        ))
        .into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}
