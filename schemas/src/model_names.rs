//! Model names customers know: the operator's TOML file mapping short names (as the OpenAI
//! and Anthropic clients send them, `claude-sonnet-4-5`) to Bedrock model ids or inference
//! profiles. Parsed and validated here (pure), like plans; a name outside the file goes
//! through as a Bedrock id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model_id::check_model_id;
use crate::plan::{PlanError, at, parse_toml};

/// The model names format this build reads.
pub const MODEL_NAMES_SCHEMA_VERSION: u32 = 1;

/// One name and the Bedrock model it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelName {
    /// What the client sends as `model`, for example `claude-sonnet-4-5`.
    pub name: String,
    /// The Bedrock model id, inference profile id or ARN it is sent to.
    pub model_id: String,
}

/// The operator's model names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelNames {
    pub schema_version: u32,
    #[serde(default)]
    pub models: Vec<ModelName>,
}

impl Default for ModelNames {
    fn default() -> Self {
        Self {
            schema_version: MODEL_NAMES_SCHEMA_VERSION,
            models: Vec::new(),
        }
    }
}

/// A model as a call named it and as it is sent to Bedrock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    /// What the client sent.
    pub name: String,
    /// The Bedrock id: the file's, or the name itself when the file does not list it.
    pub model_id: String,
}

impl ModelNames {
    /// Parses and validates a model names file; errors name the line or field and the fix.
    pub fn from_toml(text: &str) -> Result<Self, PlanError> {
        let names: Self = parse_toml(text, "the model names file")?;
        names.validate()?;
        Ok(names)
    }

    /// Checks what the format alone cannot: the version, each name's shape, each target's
    /// Bedrock shape, and that no name is listed twice.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.schema_version != MODEL_NAMES_SCHEMA_VERSION {
            return Err(at(
                "schema_version",
                format!(
                    "this build reads model names schema_version {MODEL_NAMES_SCHEMA_VERSION}, not {}",
                    self.schema_version
                ),
            ));
        }
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (index, entry) in self.models.iter().enumerate() {
            let name = entry.name.trim();
            if name.is_empty() || name != entry.name || name.len() > 256 {
                return Err(at(
                    format!("models[{index}].name"),
                    "give a name of 1 to 256 characters without surrounding spaces",
                ));
            }
            if let Some(first) = seen.insert(name, index) {
                return Err(at(
                    format!("models[{index}].name"),
                    format!(
                        "{name:?} is already listed at models[{first}]; keep one entry per name"
                    ),
                ));
            }
            check_model_id(&entry.model_id).map_err(|error| {
                at(
                    format!("models[{index}].model_id"),
                    format!("{error}; give a Bedrock model id or inference profile"),
                )
            })?;
        }
        Ok(())
    }

    /// The Bedrock model a name stands for.
    pub fn resolve(&self, name: &str) -> ResolvedModel {
        let model_id = self
            .models
            .iter()
            .find(|entry| entry.name == name)
            .map_or(name, |entry| entry.model_id.as_str());
        ResolvedModel {
            name: name.to_owned(),
            model_id: model_id.to_owned(),
        }
    }

    /// The names listed, with their targets.
    pub fn entries(&self) -> &[ModelName] {
        &self.models
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "schema_version = 1\n\n[[models]]\nname = \"claude-sonnet-4-5\"\nmodel_id = \"us.anthropic.claude-sonnet-4-5-20250929-v1:0\"\n\n[[models]]\nname = \"claude-3-haiku\"\nmodel_id = \"anthropic.claude-3-haiku-20240307-v1:0\"\n";

    #[test]
    fn names_resolve_to_their_bedrock_ids_and_others_go_through() {
        let names = ModelNames::from_toml(FILE).unwrap();
        assert_eq!(
            names.resolve("claude-sonnet-4-5").model_id,
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
        );
        let direct = names.resolve("amazon.nova-lite-v1:0");
        assert_eq!(direct.model_id, "amazon.nova-lite-v1:0");
        assert_eq!(direct.name, "amazon.nova-lite-v1:0");
        assert_eq!(ModelNames::default().resolve("x").model_id, "x");
    }

    #[test]
    fn the_documented_example_parses() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/model-names.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let names = ModelNames::from_toml(&text).unwrap();
        assert!(names.entries().len() >= 4);
    }

    #[test]
    fn mistakes_name_the_field_and_the_fix() {
        for (text, location, words) in [
            (
                "schema_version = 2\n",
                "schema_version",
                "reads model names schema_version 1",
            ),
            (
                "schema_version = 1\n[[models]]\nname = \"a\"\nmodel_id = \"../../admin\"\n",
                "models[0].model_id",
                "Bedrock model id or inference profile",
            ),
            (
                "schema_version = 1\n[[models]]\nname = \"a\"\nmodel_id = \"x.y-v1:0\"\n[[models]]\nname = \"a\"\nmodel_id = \"x.z-v1:0\"\n",
                "models[1].name",
                "already listed at models[0]",
            ),
            (
                "schema_version = 1\n[[models]]\nname = \" \"\nmodel_id = \"x.y-v1:0\"\n",
                "models[0].name",
                "1 to 256 characters",
            ),
            (
                "schema_version = 1\n[[models]]\nname = \"a\"\nmodelId = \"x\"\n",
                "line 4",
                "unknown field",
            ),
        ] {
            let error = ModelNames::from_toml(text).unwrap_err();
            assert!(error.location.starts_with(location), "{text}: {error:?}");
            assert!(error.message.contains(words), "{text}: {error:?}");
        }
    }
}
