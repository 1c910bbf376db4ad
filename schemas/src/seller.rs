//! The operator as the seller on invoices: a TOML profile with the legal name, address,
//! tax id, contact and payment terms. Parsed and validated here (pure), like plans.

use serde::{Deserialize, Serialize};

use crate::plan::{PlanError, at, parse_toml};

/// The seller profile format this build reads.
pub const SELLER_SCHEMA_VERSION: u32 = 1;
/// Days from an invoice's issue to its due date when no profile says otherwise.
pub const DEFAULT_PAYMENT_TERMS_DAYS: u32 = 30;

fn default_terms() -> u32 {
    DEFAULT_PAYMENT_TERMS_DAYS
}

/// Who issues the invoices, and how to pay them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SellerProfile {
    pub schema_version: u32,
    pub legal_name: String,
    /// The postal address, one line per entry.
    pub address: Vec<String>,
    /// VAT number or other tax id, printed when given.
    pub tax_id: Option<String>,
    pub contact_email: String,
    /// Days from the issue date to the due date.
    #[serde(default = "default_terms")]
    pub payment_terms_days: u32,
    /// How to pay (bank account, payment page), printed under the total.
    pub payment_instructions: Option<String>,
}

impl SellerProfile {
    /// Parses and validates a profile; errors name the line or field and the fix.
    pub fn from_toml(text: &str) -> Result<Self, PlanError> {
        let profile: Self = parse_toml(text, "the seller profile")?;
        profile.validate()?;
        Ok(profile)
    }

    /// Checks what the format alone cannot.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.schema_version != SELLER_SCHEMA_VERSION {
            return Err(at(
                "schema_version",
                format!(
                    "this build reads seller profile schema_version {SELLER_SCHEMA_VERSION}, not {}",
                    self.schema_version
                ),
            ));
        }
        if self.legal_name.trim().is_empty() {
            return Err(at("legal_name", "give the seller's legal name"));
        }
        if self.address.iter().all(|line| line.trim().is_empty()) {
            return Err(at("address", "give the postal address, one line per entry"));
        }
        let email = self.contact_email.trim();
        if !email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        {
            return Err(at(
                "contact_email",
                "give an email address such as billing@example.com",
            ));
        }
        if self.payment_terms_days > 365 {
            return Err(at(
                "payment_terms_days",
                "give the days to pay, from 0 to 365",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = "schema_version = 1\nlegal_name = \"Reseller GmbH\"\naddress = [\"Hauptstrasse 1\", \"10115 Berlin\", \"Germany\"]\ntax_id = \"DE123456789\"\ncontact_email = \"billing@reseller.example\"\npayment_terms_days = 14\npayment_instructions = \"IBAN DE89 3704 0044 0532 0130 00\"\n";

    #[test]
    fn the_shipped_example_is_valid() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/seller.toml");
        let profile = SellerProfile::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(profile.payment_terms_days, 30);
    }

    #[test]
    fn a_profile_reads_and_mistakes_name_the_field() {
        let profile = SellerProfile::from_toml(PROFILE).unwrap();
        assert_eq!(profile.payment_terms_days, 14);
        let without_terms = PROFILE.replace("payment_terms_days = 14\n", "");
        assert_eq!(
            SellerProfile::from_toml(&without_terms)
                .unwrap()
                .payment_terms_days,
            DEFAULT_PAYMENT_TERMS_DAYS
        );
        for (from, to, location) in [
            (
                "legal_name = \"Reseller GmbH\"",
                "legal_name = \" \"",
                "legal_name",
            ),
            ("billing@reseller.example", "billing", "contact_email"),
            (
                "payment_terms_days = 14",
                "payment_terms_days = 400",
                "payment_terms_days",
            ),
            (
                "[\"Hauptstrasse 1\", \"10115 Berlin\", \"Germany\"]",
                "[]",
                "address",
            ),
            ("schema_version = 1", "schema_version = 7", "schema_version"),
        ] {
            let error = SellerProfile::from_toml(&PROFILE.replacen(from, to, 1)).unwrap_err();
            assert_eq!(error.location, location, "{error}");
        }
        let unknown = format!("{PROFILE}colour = \"red\"\n");
        assert!(
            SellerProfile::from_toml(&unknown)
                .unwrap_err()
                .location
                .starts_with("line ")
        );
    }
}
