//! The operator's routes on every proxy (`tollgate serve`, `tollgate-proxy`, the proxy
//! Lambda): the admin API (`/admin/api/v1/`) and the console over it (`/admin/`).

use axum::Router;
use schemas::TokenHash;
use store::backend::Ports;

/// What the operator's routes are configured with: the admin credential given by its hash,
/// and Bedrock's prices.
#[derive(Debug, Clone, Default)]
pub struct OperatorSettings {
    pub configured: Option<TokenHash>,
    pub model_prices: Option<std::sync::Arc<schemas::model_prices::ModelPriceTable>>,
    pub seller: Option<std::sync::Arc<schemas::seller::SellerProfile>>,
}

impl OperatorSettings {
    /// The settings the flags give; the price table is read and checked now.
    pub fn from_args(args: &crate::args::AdminCredentialArgs) -> anyhow::Result<Self> {
        Ok(Self {
            configured: args.configured(),
            model_prices: args
                .model_prices
                .as_deref()
                .map(super::plan::load_model_prices)
                .transpose()?
                .map(std::sync::Arc::new),
            seller: args
                .seller
                .as_deref()
                .map(super::plan::load_seller_profile)
                .transpose()?
                .map(std::sync::Arc::new),
        })
    }
}

/// The console's routes and the admin API's, for [`proxy::server::start_proxy_with`].
pub fn admin_router(ports: Ports, operator: &OperatorSettings) -> Router {
    admin::console::router().merge(admin::router(admin::AdminState {
        ports,
        configured: operator.configured.clone(),
        model_prices: operator.model_prices.clone(),
        seller: operator.seller.clone(),
    }))
}
