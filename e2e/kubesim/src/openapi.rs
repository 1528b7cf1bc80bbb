//! OpenAPI documents: only what kubectl 1.32 asks for.
use http::Response;

use crate::handlers::Body;
use crate::resources::Registry;

/// None: 404 (kubectl then falls back to what it can do without a schema).
pub fn serve(_reg: &Registry, _path: &str) -> Option<Response<Body>> {
    None
}
