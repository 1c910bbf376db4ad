//! Parquet, quarantine and replay objects on S3 through `object_store`, with credentials
//! from the same AWS SDK chain as every other client, and each request counted by the
//! process's AWS meter.

use std::sync::Arc;

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::prefix::PrefixStore;

use super::meter::process_meter;
use super::meter_hooks::MeteredS3Connector;
use crate::{Result, StoreError};

/// Bridges the AWS SDK's credential chain (environment, profiles, SSO, roles) to object_store.
#[derive(Debug)]
struct SdkCredentials(SharedCredentialsProvider);

#[async_trait]
impl object_store::CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let credentials =
            self.0
                .provide_credentials()
                .await
                .map_err(|error| object_store::Error::Generic {
                    store: "S3",
                    source: Box::new(error),
                })?;
        Ok(Arc::new(AwsCredential {
            key_id: credentials.access_key_id().to_owned(),
            secret_key: credentials.secret_access_key().to_owned(),
            token: credentials.session_token().map(str::to_owned),
        }))
    }
}

/// An object store on `bucket`, under `prefix` when it is not empty.
pub fn s3_object_store(
    bucket: &str,
    prefix: &str,
    region: &str,
    endpoint_url: Option<&str>,
    credentials: SharedCredentialsProvider,
) -> Result<Arc<dyn ObjectStore>> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(region)
        .with_credentials(Arc::new(SdkCredentials(credentials)))
        .with_http_connector(MeteredS3Connector::new(process_meter()));
    if let Some(endpoint_url) = endpoint_url {
        builder = builder
            .with_endpoint(endpoint_url)
            .with_allow_http(endpoint_url.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    let store = builder.build().map_err(|error| {
        StoreError::Config(format!("cannot configure S3 bucket {bucket}: {error}"))
    })?;
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        Ok(Arc::new(store))
    } else {
        Ok(Arc::new(PrefixStore::new(store, prefix)))
    }
}
