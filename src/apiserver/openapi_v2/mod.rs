//! The Swagger 2.0 document (`/openapi/v2`, `/swagger-2.0.0.pb-v1`) for the served kinds.
//!
//! kubectl fetches it as protobuf (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`):
//! a gnostic `openapi.v2.Document`. `kubectl explain --output plaintext-openapiv2` and kubectl
//! 1.27's `apply` (which computes strategic merge patches from it) turn its definitions into
//! kube-openapi models, a strict reader: every `$ref` must name a definition, a `$ref` carries
//! no `type` or `properties`, a schema has at most one type, an array has exactly one `items`
//! schema, and primitives are `string`, `integer`, `number` or `boolean`. kubectl also looks at
//! each kind's PATCH operation: when it declares the `fieldValidation` query parameter, kubectl
//! leaves field validation to the server.
//!
//! The definitions come from k8s-openapi's schemas (through schemars), rewritten into the
//! Swagger 2.0 shapes upstream publishes (int-or-string and Quantity as typed strings, plain
//! `$ref`s with a description beside them), with the strategic merge patch extensions and the
//! `x-kubernetes-group-version-kind` of each served kind. The same document is kept as JSON
//! ([`swagger`]) and encoded to protobuf ([`document`]) from that JSON, field by field, the way
//! gnostic reads a Swagger JSON document.
//!
//! Layout: `definitions` (the schemas), `paths` (the operations of each kind), `messages`
//! (gnostic's protobuf messages) and `encode` (JSON to those messages).

mod definitions;
mod encode;
mod messages;
mod paths;

pub(crate) use paths::keep_served;

use std::sync::OnceLock;

use bytes::Bytes;
use prost::Message as _;
use serde_json::{json, Map, Value};

use super::registry;
use crate::k8s::GIT_VERSION;
use encode::to_protobuf;
use paths::paths_for;

/// Where definitions live, as `$ref`s name them.
const DEFINITIONS: &str = "#/definitions/";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const GVK_EXTENSION: &str = "x-kubernetes-group-version-kind";

/// `/openapi/v2` as protobuf: a gnostic `openapi.v2.Document`.
pub fn document() -> Bytes {
    built().protobuf.clone()
}

/// The same document as Swagger 2.0 JSON.
pub fn swagger() -> &'static Value {
    &built().json
}

struct Built {
    json: Value,
    protobuf: Bytes,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let json = build_json();
        let protobuf = Bytes::from(to_protobuf(&json).encode_to_vec());
        Built { json, protobuf }
    })
}

/// The document: the definitions, and the paths of every served kind.
fn build_json() -> Value {
    let (mut definitions, kinds) = definitions::definitions();
    let mut paths = Map::new();
    for kind in registry::KINDS {
        let Some(name) = kinds.get(&(kind.group, kind.version, kind.kind)) else {
            continue;
        };
        definitions::mark_kind(&mut definitions, kind, name);
        for (path, item) in paths_for(kind, name) {
            paths.insert(path, item);
        }
    }

    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "definitions": definitions,
    })
}

#[cfg(test)]
mod tests;
