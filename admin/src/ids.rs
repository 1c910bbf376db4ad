//! The shapes of ids in paths: a wrong shape is a 400 naming the parameter, before any
//! lookup.

use crate::error::{ApiError, ApiResult};

/// A customer id: a UUID, as `tollgate create` makes them.
pub fn customer_id(text: &str) -> ApiResult<&str> {
    if uuid::Uuid::try_parse(text).is_ok() {
        Ok(text)
    } else {
        Err(ApiError::validation(
            "customer_id",
            format!(
                "customer id {:?} is not a customer id; ids look like 0192c1a0-7b6e-7c3d-9a51-2f0e8d6b4c21 (see GET /admin/api/v1/customers)",
                shown(text)
            ),
        ))
    }
}

/// A key id: `key_` and letters or digits, as `tollgate create` and `update-token` make them.
pub fn key_id(text: &str) -> ApiResult<&str> {
    let usable = text.strip_prefix("key_").is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 32
            && rest.bytes().all(|byte| byte.is_ascii_alphanumeric())
    });
    if usable {
        Ok(text)
    } else {
        Err(ApiError::validation(
            "key_id",
            format!(
                "key id {:?} is not a key id; ids look like key_4fQ2x9LmT0aB (see GET …/customers/{{id}}/keys)",
                shown(text)
            ),
        ))
    }
}

/// At most 80 characters of a bad input, for an error message.
fn shown(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_the_wrong_shape_are_refused_naming_the_parameter() {
        assert!(customer_id("0192c1a0-7b6e-7c3d-9a51-2f0e8d6b4c21").is_ok());
        for bad in ["", "acme", "0192c1a0-7b6e-7c3d-9a51", "../etc"] {
            let error = customer_id(bad).unwrap_err();
            assert_eq!(error.field.as_deref(), Some("customer_id"));
        }
        assert!(key_id("key_4fQ2x9LmT0aB").is_ok());
        for bad in [
            "",
            "key_",
            "4fQ2x9LmT0aB",
            "key_a-b",
            &format!("key_{}", "a".repeat(33)),
        ] {
            let error = key_id(bad).unwrap_err();
            assert_eq!(error.field.as_deref(), Some("key_id"));
        }
    }
}
