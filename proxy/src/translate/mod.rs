//! The client APIs customers already use, translated to and from Bedrock's, as pure
//! functions (the routes that use them are in [`crate::client_apis`]).

pub mod anthropic;
pub mod openai;
