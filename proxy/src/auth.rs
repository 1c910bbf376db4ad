//! Bearer-token authentication: shape check without a lookup, then a lookup by SHA-256 hash.

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use schemas::token::check_token_shape;
use schemas::{ApiKey, Customer, CustomerStatus, SecretToken};
use store::Registry;

use crate::error_response::ApiError;

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub customer: Customer,
    pub key: ApiKey,
}

const HOW_TO_AUTHENTICATE: &str = "send the header Authorization: Bearer <token>";

/// Extracts the bearer token from the `Authorization` header and checks its shape.
pub fn bearer_token(headers: &HeaderMap) -> Result<SecretToken, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized(format!("missing bearer token; {HOW_TO_AUTHENTICATE}"))
        })?;
    let header = header.to_str().map_err(|_| {
        ApiError::unauthorized(format!(
            "authorization header is not text; {HOW_TO_AUTHENTICATE}"
        ))
    })?;
    let (scheme, token) = header.trim().split_once(' ').ok_or_else(|| {
        ApiError::unauthorized(format!(
            "authorization header is not a bearer token; {HOW_TO_AUTHENTICATE}"
        ))
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthorized(format!(
            "authorization scheme is not Bearer; {HOW_TO_AUTHENTICATE}"
        )));
    }
    let token = token.trim();
    check_token_shape(token).map_err(|error| {
        ApiError::unauthorized(format!(
            "malformed bearer token: {error}; check the token you were given"
        ))
    })?;
    Ok(SecretToken::new(token.to_owned()))
}

/// Authenticates a request: the token must belong to a usable key of an active customer.
pub async fn authenticate(
    registry: &dyn Registry,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<Caller, ApiError> {
    let token = bearer_token(headers)?;
    let invalid = || {
        ApiError::unauthorized(
            "invalid bearer token; check the token, or ask your provider for a new one",
        )
    };
    let key = registry
        .key_by_token_hash(&token.hash())
        .await
        .map_err(|error| {
            tracing::error!(error = %error, "registry lookup failed during authentication");
            ApiError::unavailable("authentication is temporarily unavailable; retry shortly")
        })?
        .ok_or_else(invalid)?;
    if !key.is_usable_at(now) {
        return Err(ApiError::unauthorized(format!(
            "bearer token {} has been revoked or has expired; use your current token",
            key.key_id
        )));
    }
    let customer = registry
        .customer(&key.customer_id)
        .await
        .map_err(|error| {
            tracing::error!(error = %error, "registry lookup failed during authentication");
            ApiError::unavailable("authentication is temporarily unavailable; retry shortly")
        })?
        .ok_or_else(invalid)?;
    if customer.status != CustomerStatus::Active {
        return Err(ApiError::forbidden(
            "this customer account is disabled; contact your provider to re-enable it",
        ));
    }
    Ok(Caller { customer, key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers_with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn bearer_tokens_are_extracted_case_insensitively() {
        let token = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJ0A==";
        assert_eq!(
            bearer_token(&headers_with(&format!("Bearer {token}")))
                .unwrap()
                .expose(),
            token
        );
        assert_eq!(
            bearer_token(&headers_with(&format!("bearer  {token} ")))
                .unwrap()
                .expose(),
            token
        );
    }

    #[test]
    fn missing_or_malformed_tokens_are_refused_without_echoing_them() {
        assert!(
            bearer_token(&HeaderMap::new())
                .unwrap_err()
                .message
                .contains("missing bearer token")
        );
        assert!(bearer_token(&headers_with("Basic abc")).is_err());
        assert!(bearer_token(&headers_with("Bearer")).is_err());
        let short = bearer_token(&headers_with("Bearer shortsecret")).unwrap_err();
        assert!(!short.message.contains("shortsecret"), "{}", short.message);
        assert_eq!(short.status, axum::http::StatusCode::UNAUTHORIZED);
    }
}
