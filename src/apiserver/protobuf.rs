//! Decoding of `application/vnd.kubernetes.protobuf` request bodies into JSON.
//!
//! kubectl 1.32+ sends some writes (`kubectl create deployment|configmap|secret|namespace|service`,
//! `kubectl run`, ...) as protobuf. Such a body is the 4 magic bytes `k8s\0` followed by a
//! protobuf `runtime.Unknown` envelope: `typeMeta` (apiVersion, kind), `raw` (the object's own
//! protobuf bytes), `contentEncoding` and `contentType`. [`decode_object`] turns that into the
//! JSON object the client would have sent as `application/json`, so the rest of the apiserver
//! only ever handles `serde_json::Value`.
//!
//! # How
//!
//! * The envelope is decoded with the `k8s-pb` bindings (`runtime::Unknown`) and `prost`.
//! * `k8s-pb` 0.9 derives neither serde nor `prost::Name`, ships no `FileDescriptorSet`, and its
//!   snake_case Rust field names lose the exact JSON names (`podIP`, `hostIPC`, ...). So the
//!   object itself is decoded generically with [`prost_reflect::DynamicMessage`] against a
//!   [`DescriptorPool`] built, once, from `SCHEMA`: a compact transcription of the Kubernetes
//!   1.33 `generated.proto` files (`k8s.io/api` and `k8s.io/apimachinery` v0.33.9).
//! * One generic walker turns any decoded message into JSON. Protobuf field names are the JSON
//!   names; the types whose JSON form is not an object are recognised by message full name:
//!   `meta/v1.Time` and `MicroTime` (RFC 3339 strings, `null` for the zero time),
//!   `resource.Quantity` (string), `intstr.IntOrString` (number or string),
//!   `runtime.RawExtension` and `meta/v1.FieldsV1` (embedded JSON). `bytes` become base64,
//!   maps become objects, and 64-bit integers stay JSON numbers.
//!
//! # Faithfulness to Go's JSON
//!
//! Go's generated marshallers write every non-pointer field, zero or not, so a protobuf body
//! from kubectl carries `namespace: ""`, `generation: 0`, `restartPolicy: ""`, empty `status`,
//! etc. The apiserver decodes that into Go structs, where a zero non-pointer field is the same as
//! an absent one, and JSON output omits it under `omitempty`. To produce the JSON the Go types
//! would produce, the schema marks (from the Go struct tags in `types.go`) the scalar fields
//! whose zero value must be kept: pointers (`replicas: 0`, `automountServiceAccountToken: false`)
//! and fields without `omitempty` (`containerPort`, `Container.name`). Every other zero scalar is
//! dropped. Message-typed fields are kept whenever present, as Go does for struct fields
//! (`"status": {}`, `"resources": {}`, `"creationTimestamp": null`), and Go's `json:",inline"`
//! embedded structs (`Volume.volumeSource`, `ConfigMapKeySelector.localObjectReference`,
//! `Probe.handler`, ...) are flattened into their parent object.
//!
//! # Schema format
//!
//! `SCHEMA` is line based. `@alias package.name` starts the file of one protobuf package; the
//! alias names the package in type references (`meta.ObjectMeta`). Every other line starting in
//! column 0 declares a message, continued by indented lines:
//!
//! ```text
//! MessageName field=number:type field!=number:type field^=number:type name/jsonName=number:type
//! ```
//!
//! A type is a scalar (`string`, `bytes`, `bool`, `int32`, `int64`, `double`, `float`), a message
//! (`Name` in the same package or `alias.Name`), `*type` for a repeated field or `{key:value}` for
//! a map. `!` keeps the field's zero value, `^` inlines a message field into its parent, and
//! `/jsonName` gives a JSON name that differs from the protobuf one. Every field is proto2
//! `optional`, as in the upstream files. The schema holds the messages reachable from every
//! object kind of core/v1, apps/v1, autoscaling/v1+v2, batch/v1, coordination.k8s.io/v1,
//! discovery.k8s.io/v1, events.k8s.io/v1, networking.k8s.io/v1, policy/v1,
//! rbac.authorization.k8s.io/v1, scheduling.k8s.io/v1 and storage.k8s.io/v1, plus meta/v1
//! `DeleteOptions`, `Status` and `PartialObjectMetadata`. To add a group, transcribe its
//! `generated.proto` (and the pointer/`omitempty`/`inline` facts from its `types.go`) the same way.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use base64::Engine as _;
use prost::Message as _;
use prost_reflect::prost_types::field_descriptor_proto::{Label, Type};
use prost_reflect::prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, MessageOptions,
};
use prost_reflect::{
    DescriptorPool, DynamicMessage, MapKey, MessageDescriptor, ReflectMessage, Value as ProtoValue,
};
use serde_json::{Map, Value};

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The 4 bytes every Kubernetes protobuf body starts with.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// Why a protobuf body could not be turned into JSON.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body does not start with the `k8s\0` magic prefix.
    #[error("protobuf body does not start with the k8s\\0 magic prefix")]
    MissingMagic,
    /// The bytes after the magic prefix are not a protobuf `runtime.Unknown` envelope.
    #[error("malformed runtime.Unknown envelope: {0}")]
    MalformedEnvelope(#[source] prost::DecodeError),
    /// The envelope decoded but cannot be used: it lacks `typeMeta.apiVersion`/`kind`, or it
    /// declares a `contentEncoding` or `contentType` this decoder does not handle.
    #[error("unusable runtime.Unknown envelope: {0}")]
    BadEnvelope(String),
    /// No protobuf schema is known for this apiVersion and kind.
    #[error("no protobuf schema for kind {kind:?} in apiVersion {api_version:?}")]
    UnsupportedKind {
        /// The envelope's `typeMeta.apiVersion`.
        api_version: String,
        /// The envelope's `typeMeta.kind`.
        kind: String,
    },
    /// The object's bytes are not a valid encoding of its protobuf message.
    #[error("failed to decode protobuf message {message}: {source}")]
    Decode {
        /// Full protobuf name of the message being decoded.
        message: String,
        /// The underlying protobuf error.
        #[source]
        source: prost::DecodeError,
    },
    /// Bytes that must hold embedded JSON (`RawExtension`, `FieldsV1`, or a `raw` declared as
    /// `application/json`) do not.
    #[error("{what} does not hold valid JSON: {source}")]
    EmbeddedJson {
        /// Which kind of value held the bytes.
        what: &'static str,
        /// The JSON parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A `Time`/`MicroTime` is outside the range a timestamp can represent.
    #[error("timestamp out of range: {seconds}s {nanos}ns")]
    TimeOutOfRange {
        /// Seconds since the Unix epoch.
        seconds: i64,
        /// Nanoseconds within the second.
        nanos: i64,
    },
    /// The built-in schema failed to load (a bug in `SCHEMA`).
    #[error("built-in protobuf schema is invalid: {0}")]
    Schema(String),
}

/// Result of this module's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Decode a `application/vnd.kubernetes.protobuf` request body into the object's JSON, with
/// apiVersion and kind set from the envelope.
pub fn decode_object(body: &[u8]) -> Result<Value> {
    let envelope = body
        .strip_prefix(MAGIC.as_slice())
        .ok_or(Error::MissingMagic)?;
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(envelope)
        .map_err(Error::MalformedEnvelope)?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() {
        return Err(Error::BadEnvelope(format!(
            "typeMeta must name apiVersion and kind (got apiVersion {api_version:?}, kind {kind:?})"
        )));
    }
    if let Some(encoding) = unknown.content_encoding.filter(|e| !e.is_empty()) {
        return Err(Error::BadEnvelope(format!(
            "unsupported contentEncoding {encoding:?}"
        )));
    }
    let raw = unknown.raw.unwrap_or_default();
    let content_type = unknown.content_type.unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();

    let mut object = match media_type {
        "" | CONTENT_TYPE => {
            let schema = schema()?;
            let descriptor =
                schema
                    .message_for(&api_version, &kind)
                    .ok_or_else(|| Error::UnsupportedKind {
                        api_version: api_version.clone(),
                        kind: kind.clone(),
                    })?;
            let message_name = descriptor.full_name().to_owned();
            let message = DynamicMessage::decode(descriptor, raw.as_slice()).map_err(|source| {
                Error::Decode {
                    message: message_name,
                    source,
                }
            })?;
            schema.message_to_json(&message)?
        }
        "application/json" => {
            serde_json::from_slice(&raw).map_err(|source| Error::EmbeddedJson {
                what: "runtime.Unknown raw",
                source,
            })?
        }
        other => {
            return Err(Error::BadEnvelope(format!(
                "unsupported contentType {other:?}"
            )))
        }
    };

    let Value::Object(map) = &mut object else {
        return Err(Error::BadEnvelope(format!(
            "{api_version} {kind} did not decode to a JSON object"
        )));
    };
    map.insert("apiVersion".to_owned(), Value::String(api_version));
    map.insert("kind".to_owned(), Value::String(kind));
    Ok(object)
}

const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const QUANTITY_VALUE: &str = "k8s.io.apimachinery.pkg.api.resource.QuantityValue";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";
const META_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// meta/v1 kinds that every API group version registers (they may arrive with any apiVersion).
const SHARED_META_KINDS: &[&str] = &[
    "DeleteOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "GetOptions",
    "ListOptions",
    "Status",
    "WatchEvent",
    "PartialObjectMetadata",
];

/// Unix seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z), which marshals as JSON `null`.
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;
const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The descriptor pool plus the per-field facts protobuf descriptors cannot express.
struct Schema {
    pool: DescriptorPool,
    /// Full names (`package.Message.field`) of scalar fields whose zero value Go's JSON keeps.
    keep_zero: HashSet<String>,
    /// Full names of message fields Go embeds with `json:",inline"`.
    inline: HashSet<String>,
}

fn schema() -> Result<&'static Schema> {
    static SCHEMA_CELL: OnceLock<std::result::Result<Schema, String>> = OnceLock::new();
    SCHEMA_CELL
        .get_or_init(|| Schema::parse(SCHEMA))
        .as_ref()
        .map_err(|e| Error::Schema(e.clone()))
}

impl Schema {
    /// Build the descriptor pool from the text format described in the module docs.
    fn parse(text: &str) -> std::result::Result<Self, String> {
        // Package aliases first, so that type references may point forwards.
        let mut aliases: HashMap<&str, &str> = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix('@') {
                let (alias, package) = rest
                    .split_once(' ')
                    .ok_or_else(|| format!("bad package line {line:?}"))?;
                aliases.insert(alias.trim(), package.trim());
            }
        }

        // Join continuation lines: one logical line per package or message.
        let mut logical: Vec<String> = Vec::new();
        for line in text.lines() {
            if line.trim().is_empty() {
                continue;
            }
            if line.starts_with(char::is_whitespace) {
                let last = logical
                    .last_mut()
                    .ok_or_else(|| format!("continuation line {line:?} before any message"))?;
                last.push(' ');
                last.push_str(line.trim());
            } else {
                logical.push(line.trim().to_owned());
            }
        }

        let mut files: Vec<FileDescriptorProto> = Vec::new();
        let mut file_deps: Vec<BTreeSet<String>> = Vec::new();
        let mut keep_zero = HashSet::new();
        let mut inline = HashSet::new();
        for line in &logical {
            if let Some(rest) = line.strip_prefix('@') {
                let package = rest
                    .split_once(' ')
                    .map(|(_, p)| p.trim())
                    .unwrap_or_default();
                files.push(FileDescriptorProto {
                    name: Some(file_name(package)),
                    package: Some(package.to_owned()),
                    syntax: Some("proto2".to_owned()),
                    ..Default::default()
                });
                file_deps.push(BTreeSet::new());
                continue;
            }
            let (file, deps) = match (files.last_mut(), file_deps.last_mut()) {
                (Some(file), Some(deps)) => (file, deps),
                _ => return Err(format!("message line {line:?} before any @package line")),
            };
            let package = file.package().to_owned();
            let mut tokens = line.split_ascii_whitespace();
            let message_name = tokens.next().unwrap_or_default().to_owned();
            let message_full_name = format!("{package}.{message_name}");
            let mut message = DescriptorProto {
                name: Some(message_name.clone()),
                ..Default::default()
            };
            for token in tokens {
                let field = parse_field_token(token)
                    .map_err(|e| format!("{message_full_name}: field {token:?}: {e}"))?;
                let field_full_name = format!("{message_full_name}.{}", field.name);
                if field.keep_zero {
                    keep_zero.insert(field_full_name.clone());
                }
                if field.inline {
                    inline.insert(field_full_name);
                }
                let context = |e: String| format!("{message_full_name}.{}: {e}", field.name);
                if let Some(entry) = field.ty.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    let (key_ty, value_ty) = entry
                        .split_once(':')
                        .ok_or_else(|| format!("{message_full_name}: bad map type {entry:?}"))?;
                    let key = resolve_type(key_ty, &package, &aliases, deps).map_err(context)?;
                    let value =
                        resolve_type(value_ty, &package, &aliases, deps).map_err(context)?;
                    let entry_name = map_entry_name(field.name);
                    message.nested_type.push(DescriptorProto {
                        name: Some(entry_name.clone()),
                        field: vec![
                            field_proto("key", "key", 1, Label::Optional, key),
                            field_proto("value", "value", 2, Label::Optional, value),
                        ],
                        options: Some(MessageOptions {
                            map_entry: Some(true),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                    let entry_type = (
                        Type::Message,
                        Some(format!(".{message_full_name}.{entry_name}")),
                    );
                    message.field.push(field_proto(
                        field.name,
                        field.json_name,
                        field.number,
                        Label::Repeated,
                        entry_type,
                    ));
                } else if let Some(element) = field.ty.strip_prefix('*') {
                    let element =
                        resolve_type(element, &package, &aliases, deps).map_err(context)?;
                    message.field.push(field_proto(
                        field.name,
                        field.json_name,
                        field.number,
                        Label::Repeated,
                        element,
                    ));
                } else {
                    let ty = resolve_type(field.ty, &package, &aliases, deps).map_err(context)?;
                    message.field.push(field_proto(
                        field.name,
                        field.json_name,
                        field.number,
                        Label::Optional,
                        ty,
                    ));
                }
            }
            file.message_type.push(message);
        }
        for (file, deps) in files.iter_mut().zip(file_deps) {
            file.dependency = deps.iter().map(|package| file_name(package)).collect();
        }

        let mut pool = DescriptorPool::new();
        pool.add_file_descriptor_protos(files)
            .map_err(|e| e.to_string())?;
        Ok(Schema {
            pool,
            keep_zero,
            inline,
        })
    }

    /// The protobuf message of an object kind, if the schema has it.
    fn message_for(&self, api_version: &str, kind: &str) -> Option<MessageDescriptor> {
        let is_name = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        if !is_name(kind) || !is_name(version) {
            return None;
        }
        let package = match group {
            "" => Some("k8s.io.api.core".to_owned()),
            "meta.k8s.io" => None,
            "internal.apiserver.k8s.io" => Some("k8s.io.api.apiserverinternal".to_owned()),
            "apiextensions.k8s.io" => {
                Some("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions".to_owned())
            }
            "apiregistration.k8s.io" => {
                Some("k8s.io.kube_aggregator.pkg.apis.apiregistration".to_owned())
            }
            // Legacy groups have no dots (apps, batch, autoscaling, policy); the others are
            // `<name>[.<more>].k8s.io` and live in package `k8s.io.api.<name>`.
            group if !group.contains('.') || group.ends_with(".k8s.io") => group
                .split('.')
                .next()
                .filter(|first| is_name(*first))
                .map(|first| format!("k8s.io.api.{first}")),
            _ => None,
        };
        let own = package
            .and_then(|package| {
                self.pool
                    .get_message_by_name(&format!("{package}.{version}.{kind}"))
            })
            .filter(|message| message.get_field_by_name("metadata").is_some());
        own.or_else(|| {
            SHARED_META_KINDS
                .contains(&kind)
                .then(|| self.pool.get_message_by_name(&format!("{META_V1}.{kind}")))
                .flatten()
        })
    }

    /// Convert a decoded message into the JSON its Go type marshals to.
    fn message_to_json(&self, message: &DynamicMessage) -> Result<Value> {
        let descriptor = message.descriptor();
        match descriptor.full_name() {
            TIME => return time_to_json(message, false),
            MICRO_TIME => return time_to_json(message, true),
            QUANTITY | QUANTITY_VALUE => {
                return Ok(Value::String(
                    string_field(message, 1).unwrap_or_else(|| "0".to_owned()),
                ))
            }
            INT_OR_STRING => {
                // type 0 is intstr.Int, type 1 is intstr.String.
                return Ok(if int_field(message, 1).unwrap_or(0) == 1 {
                    Value::String(string_field(message, 3).unwrap_or_default())
                } else {
                    Value::from(int_field(message, 2).unwrap_or(0))
                });
            }
            RAW_EXTENSION => return embedded_json(message, "runtime.RawExtension"),
            FIELDS_V1 => return embedded_json(message, "meta/v1.FieldsV1"),
            _ => {}
        }

        let mut object = Map::new();
        for (field, value) in message.fields() {
            let full_name = field.full_name();
            if self.inline.contains(full_name) {
                match self.value_to_json(value)? {
                    Value::Object(inner) => object.extend(inner),
                    Value::Null => {}
                    other => {
                        object.insert(field.json_name().to_owned(), other);
                    }
                }
                continue;
            }
            if is_zero_scalar(value) && !self.keep_zero.contains(full_name) {
                continue;
            }
            object.insert(field.json_name().to_owned(), self.value_to_json(value)?);
        }
        Ok(Value::Object(object))
    }

    fn value_to_json(&self, value: &ProtoValue) -> Result<Value> {
        Ok(match value {
            ProtoValue::Bool(b) => Value::Bool(*b),
            ProtoValue::I32(n) => Value::from(*n),
            ProtoValue::I64(n) => Value::from(*n),
            ProtoValue::U32(n) => Value::from(*n),
            ProtoValue::U64(n) => Value::from(*n),
            ProtoValue::F32(n) => Value::from(f64::from(*n)),
            ProtoValue::F64(n) => Value::from(*n),
            ProtoValue::String(s) => Value::String(s.clone()),
            ProtoValue::Bytes(b) => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
            ProtoValue::EnumNumber(n) => Value::from(*n),
            ProtoValue::Message(m) => self.message_to_json(m)?,
            ProtoValue::List(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.value_to_json(item))
                    .collect::<Result<Vec<_>>>()?,
            ),
            ProtoValue::Map(entries) => {
                let mut object = Map::new();
                for (key, value) in entries {
                    object.insert(map_key_to_string(key), self.value_to_json(value)?);
                }
                Value::Object(object)
            }
        })
    }
}

/// One parsed `name[/json][!^]=number:type` token of `SCHEMA`.
struct FieldToken<'a> {
    name: &'a str,
    json_name: &'a str,
    number: i32,
    ty: &'a str,
    keep_zero: bool,
    inline: bool,
}

fn parse_field_token(token: &str) -> std::result::Result<FieldToken<'_>, String> {
    let (lhs, rhs) = token.split_once('=').ok_or("missing '='")?;
    let (number, ty) = rhs.split_once(':').ok_or("missing ':'")?;
    let number: i32 = number
        .parse()
        .map_err(|e| format!("bad field number {number:?}: {e}"))?;
    let names = lhs.trim_end_matches(|c: char| c == '!' || c == '^');
    let flags = &lhs[names.len()..];
    let (name, json_name) = names.split_once('/').unwrap_or((names, names));
    if name.is_empty() || json_name.is_empty() || ty.is_empty() {
        return Err("empty name or type".to_owned());
    }
    Ok(FieldToken {
        name,
        json_name,
        number,
        ty,
        keep_zero: flags.contains('!'),
        inline: flags.contains('^'),
    })
}

/// Resolve a schema type reference to a protobuf type and, for messages, a full type name.
fn resolve_type(
    ty: &str,
    package: &str,
    aliases: &HashMap<&str, &str>,
    deps: &mut BTreeSet<String>,
) -> std::result::Result<(Type, Option<String>), String> {
    let scalar = match ty {
        "string" => Some(Type::String),
        "bytes" => Some(Type::Bytes),
        "bool" => Some(Type::Bool),
        "int32" => Some(Type::Int32),
        "int64" => Some(Type::Int64),
        "double" => Some(Type::Double),
        "float" => Some(Type::Float),
        _ => None,
    };
    if let Some(scalar) = scalar {
        return Ok((scalar, None));
    }
    let full_name = match ty.split_once('.') {
        Some((alias, name)) => {
            let target = aliases
                .get(alias)
                .ok_or_else(|| format!("unknown package alias {alias:?}"))?;
            if *target != package {
                deps.insert((*target).to_owned());
            }
            format!(".{target}.{name}")
        }
        None => format!(".{package}.{ty}"),
    };
    Ok((Type::Message, Some(full_name)))
}

fn field_proto(
    name: &str,
    json_name: &str,
    number: i32,
    label: Label,
    (ty, type_name): (Type, Option<String>),
) -> FieldDescriptorProto {
    FieldDescriptorProto {
        name: Some(name.to_owned()),
        number: Some(number),
        label: Some(label as i32),
        r#type: Some(ty as i32),
        type_name,
        json_name: Some(json_name.to_owned()),
        ..Default::default()
    }
}

fn file_name(package: &str) -> String {
    format!("{package}.proto")
}

/// protoc's name for the entry message of map field `field` (`nodeSelector` -> `NodeSelectorEntry`).
fn map_entry_name(field: &str) -> String {
    let mut chars = field.chars();
    match chars.next() {
        Some(first) => format!("{}{}Entry", first.to_ascii_uppercase(), chars.as_str()),
        None => "Entry".to_owned(),
    }
}

fn map_key_to_string(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// Whether `value` is the zero value of a scalar type (which Go's `omitempty` drops).
fn is_zero_scalar(value: &ProtoValue) -> bool {
    match value {
        ProtoValue::Bool(b) => !*b,
        ProtoValue::I32(n) => *n == 0,
        ProtoValue::I64(n) => *n == 0,
        ProtoValue::U32(n) => *n == 0,
        ProtoValue::U64(n) => *n == 0,
        ProtoValue::F32(n) => *n == 0.0,
        ProtoValue::F64(n) => *n == 0.0,
        ProtoValue::String(s) => s.is_empty(),
        ProtoValue::Bytes(b) => b.is_empty(),
        ProtoValue::EnumNumber(n) => *n == 0,
        ProtoValue::Message(_) | ProtoValue::List(_) | ProtoValue::Map(_) => false,
    }
}

/// The value of field `number` if it is present in `message`.
fn present_field(message: &DynamicMessage, number: u32) -> Option<Cow<'_, ProtoValue>> {
    if message.has_field_by_number(number) {
        message.get_field_by_number(number)
    } else {
        None
    }
}

fn int_field(message: &DynamicMessage, number: u32) -> Option<i64> {
    present_field(message, number).and_then(|value| match &*value {
        ProtoValue::I32(n) => Some(i64::from(*n)),
        ProtoValue::I64(n) => Some(*n),
        _ => None,
    })
}

fn string_field(message: &DynamicMessage, number: u32) -> Option<String> {
    present_field(message, number).and_then(|value| value.as_str().map(str::to_owned))
}

/// `meta/v1.Time` (second precision) or `MicroTime` (microsecond precision) as Go marshals it.
fn time_to_json(message: &DynamicMessage, micro: bool) -> Result<Value> {
    // Go marshals the zero time as an empty message.
    if message.fields().next().is_none() {
        return Ok(Value::Null);
    }
    let seconds = int_field(message, 1).unwrap_or(0);
    // Go's Time.Unmarshal drops the nanoseconds; MicroTime keeps them.
    let nanos = if micro {
        int_field(message, 2).unwrap_or(0)
    } else {
        0
    };
    let out_of_range = || Error::TimeOutOfRange { seconds, nanos };
    let whole_seconds = seconds
        .checked_add(nanos.div_euclid(NANOS_PER_SECOND))
        .ok_or_else(out_of_range)?;
    let sub_nanos =
        u32::try_from(nanos.rem_euclid(NANOS_PER_SECOND)).map_err(|_| out_of_range())?;
    if whole_seconds == GO_ZERO_TIME_UNIX && sub_nanos == 0 {
        return Ok(Value::Null);
    }
    let timestamp = chrono::DateTime::<chrono::Utc>::from_timestamp(whole_seconds, sub_nanos)
        .ok_or_else(out_of_range)?;
    let format = if micro {
        chrono::SecondsFormat::Micros
    } else {
        chrono::SecondsFormat::Secs
    };
    Ok(Value::String(timestamp.to_rfc3339_opts(format, true)))
}

/// `RawExtension.raw` / `FieldsV1.Raw`: embedded JSON (or, for a nested object that was itself
/// protobuf-encoded, another `k8s\0` body).
fn embedded_json(message: &DynamicMessage, what: &'static str) -> Result<Value> {
    let Some(value) = present_field(message, 1) else {
        return Ok(Value::Null);
    };
    let raw: &[u8] = value.as_bytes().map(|b| &b[..]).unwrap_or_default();
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if raw.starts_with(&MAGIC) {
        return decode_object(raw);
    }
    serde_json::from_slice(raw).map_err(|source| Error::EmbeddedJson { what, source })
}

/// The Kubernetes 1.33 protobuf schema in the format described in the module docs.
///
/// Transcribed from the `generated.proto` files of `k8s.io/api` and `k8s.io/apimachinery`
/// v0.33.9, keeping the messages reachable from the supported kinds, with the `!`, `^` and
/// `/json` marks taken from the Go struct tags of the same release.
const SCHEMA: &str = r#"
@intstr k8s.io.apimachinery.pkg.util.intstr
IntOrString type=1:int64 intVal=2:int32 strVal=3:string
@resource k8s.io.apimachinery.pkg.api.resource
Quantity string=1:string
@runtime k8s.io.apimachinery.pkg.runtime
RawExtension raw!=1:bytes
@meta k8s.io.apimachinery.pkg.apis.meta.v1
Condition type!=1:string status!=2:string observedGeneration=3:int64 lastTransitionTime=4:Time
   reason!=5:string message!=6:string
DeleteOptions gracePeriodSeconds!=1:int64 preconditions=2:Preconditions orphanDependents!=3:bool
   propagationPolicy!=4:string dryRun=5:*string
   ignoreStoreReadErrorWithClusterBreakingPotential!=6:bool
FieldsV1 Raw!=1:bytes
LabelSelector matchLabels=1:{string:string} matchExpressions=2:*LabelSelectorRequirement
LabelSelectorRequirement key!=1:string operator!=2:string values=3:*string
ListMeta selfLink=1:string resourceVersion=2:string continue=3:string remainingItemCount!=4:int64
ManagedFieldsEntry manager=1:string operation=2:string apiVersion=3:string time=4:Time
   fieldsType=6:string fieldsV1=7:FieldsV1 subresource=8:string
MicroTime seconds=1:int64 nanos=2:int32
ObjectMeta name=1:string generateName=2:string namespace=3:string selfLink=4:string uid=5:string
   resourceVersion=6:string generation=7:int64 creationTimestamp=8:Time deletionTimestamp=9:Time
   deletionGracePeriodSeconds!=10:int64 labels=11:{string:string} annotations=12:{string:string}
   ownerReferences=13:*OwnerReference finalizers=14:*string managedFields=17:*ManagedFieldsEntry
OwnerReference apiVersion!=5:string kind!=1:string name!=3:string uid!=4:string controller!=6:bool
   blockOwnerDeletion!=7:bool
PartialObjectMetadata metadata=1:ObjectMeta
Preconditions uid!=1:string resourceVersion!=2:string
Status metadata=1:ListMeta status=2:string message=3:string reason=4:string
   details=5:StatusDetails code=6:int32
StatusCause reason=1:string message=2:string field=3:string
StatusDetails name=1:string group=2:string kind=3:string uid=6:string causes=4:*StatusCause
   retryAfterSeconds=5:int32
Time seconds=1:int64 nanos=2:int32
@apps k8s.io.api.apps.v1
ControllerRevision metadata=1:meta.ObjectMeta data=2:runtime.RawExtension revision!=3:int64
DaemonSet metadata=1:meta.ObjectMeta spec=2:DaemonSetSpec status=3:DaemonSetStatus
DaemonSetCondition type!=1:string status!=2:string lastTransitionTime=3:meta.Time reason=4:string
   message=5:string
DaemonSetSpec selector=1:meta.LabelSelector template=2:core.PodTemplateSpec
   updateStrategy=3:DaemonSetUpdateStrategy minReadySeconds=4:int32 revisionHistoryLimit!=6:int32
DaemonSetStatus currentNumberScheduled!=1:int32 numberMisscheduled!=2:int32
   desiredNumberScheduled!=3:int32 numberReady!=4:int32 observedGeneration=5:int64
   updatedNumberScheduled=6:int32 numberAvailable=7:int32 numberUnavailable=8:int32
   collisionCount!=9:int32 conditions=10:*DaemonSetCondition
DaemonSetUpdateStrategy type=1:string rollingUpdate=2:RollingUpdateDaemonSet
Deployment metadata=1:meta.ObjectMeta spec=2:DeploymentSpec status=3:DeploymentStatus
DeploymentCondition type!=1:string status!=2:string lastUpdateTime=6:meta.Time
   lastTransitionTime=7:meta.Time reason=4:string message=5:string
DeploymentSpec replicas!=1:int32 selector=2:meta.LabelSelector template=3:core.PodTemplateSpec
   strategy=4:DeploymentStrategy minReadySeconds=5:int32 revisionHistoryLimit!=6:int32
   paused=7:bool progressDeadlineSeconds!=9:int32
DeploymentStatus observedGeneration=1:int64 replicas=2:int32 updatedReplicas=3:int32
   readyReplicas=7:int32 availableReplicas=4:int32 unavailableReplicas=5:int32
   terminatingReplicas!=9:int32 conditions=6:*DeploymentCondition collisionCount!=8:int32
DeploymentStrategy type=1:string rollingUpdate=2:RollingUpdateDeployment
ReplicaSet metadata=1:meta.ObjectMeta spec=2:ReplicaSetSpec status=3:ReplicaSetStatus
ReplicaSetCondition type!=1:string status!=2:string lastTransitionTime=3:meta.Time reason=4:string
   message=5:string
ReplicaSetSpec replicas!=1:int32 minReadySeconds=4:int32 selector=2:meta.LabelSelector
   template=3:core.PodTemplateSpec
ReplicaSetStatus replicas!=1:int32 fullyLabeledReplicas=2:int32 readyReplicas=4:int32
   availableReplicas=5:int32 terminatingReplicas!=7:int32 observedGeneration=3:int64
   conditions=6:*ReplicaSetCondition
RollingUpdateDaemonSet maxUnavailable=1:intstr.IntOrString maxSurge=2:intstr.IntOrString
RollingUpdateDeployment maxUnavailable=1:intstr.IntOrString maxSurge=2:intstr.IntOrString
RollingUpdateStatefulSetStrategy partition!=1:int32 maxUnavailable=2:intstr.IntOrString
StatefulSet metadata=1:meta.ObjectMeta spec=2:StatefulSetSpec status=3:StatefulSetStatus
StatefulSetCondition type!=1:string status!=2:string lastTransitionTime=3:meta.Time
   reason=4:string message=5:string
StatefulSetOrdinals start!=1:int32
StatefulSetPersistentVolumeClaimRetentionPolicy whenDeleted=1:string whenScaled=2:string
StatefulSetSpec replicas!=1:int32 selector=2:meta.LabelSelector template=3:core.PodTemplateSpec
   volumeClaimTemplates=4:*core.PersistentVolumeClaim serviceName!=5:string
   podManagementPolicy=6:string updateStrategy=7:StatefulSetUpdateStrategy
   revisionHistoryLimit!=8:int32 minReadySeconds=9:int32
   persistentVolumeClaimRetentionPolicy=10:StatefulSetPersistentVolumeClaimRetentionPolicy
   ordinals=11:StatefulSetOrdinals
StatefulSetStatus observedGeneration=1:int64 replicas!=2:int32 readyReplicas=3:int32
   currentReplicas=4:int32 updatedReplicas=5:int32 currentRevision=6:string
   updateRevision=7:string collisionCount!=9:int32 conditions=10:*StatefulSetCondition
   availableReplicas!=11:int32
StatefulSetUpdateStrategy type=1:string rollingUpdate=2:RollingUpdateStatefulSetStrategy
@autoscaling k8s.io.api.autoscaling.v1
CrossVersionObjectReference kind!=1:string name!=2:string apiVersion=3:string
HorizontalPodAutoscaler metadata=1:meta.ObjectMeta spec=2:HorizontalPodAutoscalerSpec
   status=3:HorizontalPodAutoscalerStatus
HorizontalPodAutoscalerSpec scaleTargetRef=1:CrossVersionObjectReference minReplicas!=2:int32
   maxReplicas!=3:int32 targetCPUUtilizationPercentage!=4:int32
HorizontalPodAutoscalerStatus observedGeneration!=1:int64 lastScaleTime=2:meta.Time
   currentReplicas!=3:int32 desiredReplicas!=4:int32 currentCPUUtilizationPercentage!=5:int32
Scale metadata=1:meta.ObjectMeta spec=2:ScaleSpec status=3:ScaleStatus
ScaleSpec replicas=1:int32
ScaleStatus replicas!=1:int32 selector=2:string
@autoscalingv2 k8s.io.api.autoscaling.v2
ContainerResourceMetricSource name!=1:string target=2:MetricTarget container!=3:string
ContainerResourceMetricStatus name!=1:string current=2:MetricValueStatus container!=3:string
CrossVersionObjectReference kind!=1:string name!=2:string apiVersion=3:string
ExternalMetricSource metric=1:MetricIdentifier target=2:MetricTarget
ExternalMetricStatus metric=1:MetricIdentifier current=2:MetricValueStatus
HPAScalingPolicy type!=1:string value!=2:int32 periodSeconds!=3:int32
HPAScalingRules stabilizationWindowSeconds!=3:int32 selectPolicy!=1:string
   policies=2:*HPAScalingPolicy tolerance=4:resource.Quantity
HorizontalPodAutoscaler metadata=1:meta.ObjectMeta spec=2:HorizontalPodAutoscalerSpec
   status=3:HorizontalPodAutoscalerStatus
HorizontalPodAutoscalerBehavior scaleUp=1:HPAScalingRules scaleDown=2:HPAScalingRules
HorizontalPodAutoscalerCondition type!=1:string status!=2:string lastTransitionTime=3:meta.Time
   reason=4:string message=5:string
HorizontalPodAutoscalerSpec scaleTargetRef=1:CrossVersionObjectReference minReplicas!=2:int32
   maxReplicas!=3:int32 metrics=4:*MetricSpec behavior=5:HorizontalPodAutoscalerBehavior
HorizontalPodAutoscalerStatus observedGeneration!=1:int64 lastScaleTime=2:meta.Time
   currentReplicas=3:int32 desiredReplicas!=4:int32 currentMetrics=5:*MetricStatus
   conditions=6:*HorizontalPodAutoscalerCondition
MetricIdentifier name!=1:string selector=2:meta.LabelSelector
MetricSpec type!=1:string object=2:ObjectMetricSource pods=3:PodsMetricSource
   resource=4:ResourceMetricSource containerResource=7:ContainerResourceMetricSource
   external=5:ExternalMetricSource
MetricStatus type!=1:string object=2:ObjectMetricStatus pods=3:PodsMetricStatus
   resource=4:ResourceMetricStatus containerResource=7:ContainerResourceMetricStatus
   external=5:ExternalMetricStatus
MetricTarget type!=1:string value=2:resource.Quantity averageValue=3:resource.Quantity
   averageUtilization!=4:int32
MetricValueStatus value=1:resource.Quantity averageValue=2:resource.Quantity
   averageUtilization!=3:int32
ObjectMetricSource describedObject=1:CrossVersionObjectReference target=2:MetricTarget
   metric=3:MetricIdentifier
ObjectMetricStatus metric=1:MetricIdentifier current=2:MetricValueStatus
   describedObject=3:CrossVersionObjectReference
PodsMetricSource metric=1:MetricIdentifier target=2:MetricTarget
PodsMetricStatus metric=1:MetricIdentifier current=2:MetricValueStatus
ResourceMetricSource name!=1:string target=2:MetricTarget
ResourceMetricStatus name!=1:string current=2:MetricValueStatus
@batch k8s.io.api.batch.v1
CronJob metadata=1:meta.ObjectMeta spec=2:CronJobSpec status=3:CronJobStatus
CronJobSpec schedule!=1:string timeZone!=8:string startingDeadlineSeconds!=2:int64
   concurrencyPolicy=3:string suspend!=4:bool jobTemplate=5:JobTemplateSpec
   successfulJobsHistoryLimit!=6:int32 failedJobsHistoryLimit!=7:int32
CronJobStatus active=1:*core.ObjectReference lastScheduleTime=4:meta.Time
   lastSuccessfulTime=5:meta.Time
Job metadata=1:meta.ObjectMeta spec=2:JobSpec status=3:JobStatus
JobCondition type!=1:string status!=2:string lastProbeTime=3:meta.Time
   lastTransitionTime=4:meta.Time reason=5:string message=6:string
JobSpec parallelism!=1:int32 completions!=2:int32 activeDeadlineSeconds!=3:int64
   podFailurePolicy=11:PodFailurePolicy successPolicy=16:SuccessPolicy backoffLimit!=7:int32
   backoffLimitPerIndex!=12:int32 maxFailedIndexes!=13:int32 selector=4:meta.LabelSelector
   manualSelector!=5:bool template=6:core.PodTemplateSpec ttlSecondsAfterFinished!=8:int32
   completionMode!=9:string suspend!=10:bool podReplacementPolicy!=14:string managedBy!=15:string
JobStatus conditions=1:*JobCondition startTime=2:meta.Time completionTime=3:meta.Time
   active=4:int32 succeeded=5:int32 failed=6:int32 terminating!=11:int32 completedIndexes=7:string
   failedIndexes!=10:string uncountedTerminatedPods=8:UncountedTerminatedPods ready!=9:int32
JobTemplateSpec metadata=1:meta.ObjectMeta spec=2:JobSpec
PodFailurePolicy rules=1:*PodFailurePolicyRule
PodFailurePolicyOnExitCodesRequirement containerName!=1:string operator!=2:string values=3:*int32
PodFailurePolicyOnPodConditionsPattern type!=1:string status!=2:string
PodFailurePolicyRule action!=1:string onExitCodes=2:PodFailurePolicyOnExitCodesRequirement
   onPodConditions=3:*PodFailurePolicyOnPodConditionsPattern
SuccessPolicy rules=1:*SuccessPolicyRule
SuccessPolicyRule succeededIndexes!=1:string succeededCount!=2:int32
UncountedTerminatedPods succeeded=1:*string failed=2:*string
@coordination k8s.io.api.coordination.v1
Lease metadata=1:meta.ObjectMeta spec=2:LeaseSpec
LeaseSpec holderIdentity!=1:string leaseDurationSeconds!=2:int32 acquireTime=3:meta.MicroTime
   renewTime=4:meta.MicroTime leaseTransitions!=5:int32 strategy!=6:string
   preferredHolder!=7:string
@core k8s.io.api.core.v1
AWSElasticBlockStoreVolumeSource volumeID!=1:string fsType=2:string partition=3:int32
   readOnly=4:bool
Affinity nodeAffinity=1:NodeAffinity podAffinity=2:PodAffinity podAntiAffinity=3:PodAntiAffinity
AppArmorProfile type!=1:string localhostProfile!=2:string
AttachedVolume name!=1:string devicePath!=2:string
AzureDiskVolumeSource diskName!=1:string diskURI!=2:string cachingMode!=3:string fsType!=4:string
   readOnly!=5:bool kind!=6:string
AzureFilePersistentVolumeSource secretName!=1:string shareName!=2:string readOnly=3:bool
   secretNamespace!=4:string
AzureFileVolumeSource secretName!=1:string shareName!=2:string readOnly=3:bool
Binding metadata=1:meta.ObjectMeta target=2:ObjectReference
CSIPersistentVolumeSource driver!=1:string volumeHandle!=2:string readOnly=3:bool fsType=4:string
   volumeAttributes=5:{string:string} controllerPublishSecretRef=6:SecretReference
   nodeStageSecretRef=7:SecretReference nodePublishSecretRef=8:SecretReference
   controllerExpandSecretRef=9:SecretReference nodeExpandSecretRef=10:SecretReference
CSIVolumeSource driver!=1:string readOnly!=2:bool fsType!=3:string
   volumeAttributes=4:{string:string} nodePublishSecretRef=5:LocalObjectReference
Capabilities add=1:*string drop=2:*string
CephFSPersistentVolumeSource monitors=1:*string path=2:string user=3:string secretFile=4:string
   secretRef=5:SecretReference readOnly=6:bool
CephFSVolumeSource monitors=1:*string path=2:string user=3:string secretFile=4:string
   secretRef=5:LocalObjectReference readOnly=6:bool
CinderPersistentVolumeSource volumeID!=1:string fsType=2:string readOnly=3:bool
   secretRef=4:SecretReference
CinderVolumeSource volumeID!=1:string fsType=2:string readOnly=3:bool
   secretRef=4:LocalObjectReference
ClientIPConfig timeoutSeconds!=1:int32
ClusterTrustBundleProjection name!=1:string signerName!=2:string
   labelSelector=3:meta.LabelSelector optional!=5:bool path!=4:string
ComponentCondition type!=1:string status!=2:string message=3:string error=4:string
ComponentStatus metadata=1:meta.ObjectMeta conditions=2:*ComponentCondition
ConfigMap metadata=1:meta.ObjectMeta immutable!=4:bool data=2:{string:string}
   binaryData=3:{string:bytes}
ConfigMapEnvSource localObjectReference^=1:LocalObjectReference optional!=2:bool
ConfigMapKeySelector localObjectReference^=1:LocalObjectReference key!=2:string optional!=3:bool
ConfigMapNodeConfigSource namespace!=1:string name!=2:string uid=3:string resourceVersion=4:string
   kubeletConfigKey!=5:string
ConfigMapProjection localObjectReference^=1:LocalObjectReference items=2:*KeyToPath
   optional!=4:bool
ConfigMapVolumeSource localObjectReference^=1:LocalObjectReference items=2:*KeyToPath
   defaultMode!=3:int32 optional!=4:bool
Container name!=1:string image=2:string command=3:*string args=4:*string workingDir=5:string
   ports=6:*ContainerPort envFrom=19:*EnvFromSource env=7:*EnvVar resources=8:ResourceRequirements
   resizePolicy=23:*ContainerResizePolicy restartPolicy!=24:string volumeMounts=9:*VolumeMount
   volumeDevices=21:*VolumeDevice livenessProbe=10:Probe readinessProbe=11:Probe
   startupProbe=22:Probe lifecycle=12:Lifecycle terminationMessagePath=13:string
   terminationMessagePolicy=20:string imagePullPolicy=14:string securityContext=15:SecurityContext
   stdin=16:bool stdinOnce=17:bool tty=18:bool
ContainerImage names=1:*string sizeBytes=2:int64
ContainerPort name=1:string hostPort=2:int32 containerPort!=3:int32 protocol=4:string
   hostIP=5:string
ContainerResizePolicy resourceName!=1:string restartPolicy!=2:string
ContainerState waiting=1:ContainerStateWaiting running=2:ContainerStateRunning
   terminated=3:ContainerStateTerminated
ContainerStateRunning startedAt=1:meta.Time
ContainerStateTerminated exitCode!=1:int32 signal=2:int32 reason=3:string message=4:string
   startedAt=5:meta.Time finishedAt=6:meta.Time containerID=7:string
ContainerStateWaiting reason=1:string message=2:string
ContainerStatus name!=1:string state=2:ContainerState lastState=3:ContainerState ready!=4:bool
   restartCount!=5:int32 image!=6:string imageID!=7:string containerID=8:string started!=9:bool
   allocatedResources=10:{string:resource.Quantity} resources=11:ResourceRequirements
   volumeMounts=12:*VolumeMountStatus user=13:ContainerUser
   allocatedResourcesStatus=14:*ResourceStatus stopSignal!=15:string
ContainerUser linux=1:LinuxContainerUser
DaemonEndpoint Port!=1:int32
DownwardAPIProjection items=1:*DownwardAPIVolumeFile
DownwardAPIVolumeFile path!=1:string fieldRef=2:ObjectFieldSelector
   resourceFieldRef=3:ResourceFieldSelector mode!=4:int32
DownwardAPIVolumeSource items=1:*DownwardAPIVolumeFile defaultMode!=2:int32
EmptyDirVolumeSource medium=1:string sizeLimit=2:resource.Quantity
EndpointAddress ip!=1:string hostname=3:string nodeName!=4:string targetRef=2:ObjectReference
EndpointPort name=1:string port!=2:int32 protocol=3:string appProtocol!=4:string
EndpointSubset addresses=1:*EndpointAddress notReadyAddresses=2:*EndpointAddress
   ports=3:*EndpointPort
Endpoints metadata=1:meta.ObjectMeta subsets=2:*EndpointSubset
EnvFromSource prefix=1:string configMapRef=2:ConfigMapEnvSource secretRef=3:SecretEnvSource
EnvVar name!=1:string value=2:string valueFrom=3:EnvVarSource
EnvVarSource fieldRef=1:ObjectFieldSelector resourceFieldRef=2:ResourceFieldSelector
   configMapKeyRef=3:ConfigMapKeySelector secretKeyRef=4:SecretKeySelector
EphemeralContainer ephemeralContainerCommon^=1:EphemeralContainerCommon
   targetContainerName=2:string
EphemeralContainerCommon name!=1:string image=2:string command=3:*string args=4:*string
   workingDir=5:string ports=6:*ContainerPort envFrom=19:*EnvFromSource env=7:*EnvVar
   resources=8:ResourceRequirements resizePolicy=23:*ContainerResizePolicy
   restartPolicy!=24:string volumeMounts=9:*VolumeMount volumeDevices=21:*VolumeDevice
   livenessProbe=10:Probe readinessProbe=11:Probe startupProbe=22:Probe lifecycle=12:Lifecycle
   terminationMessagePath=13:string terminationMessagePolicy=20:string imagePullPolicy=14:string
   securityContext=15:SecurityContext stdin=16:bool stdinOnce=17:bool tty=18:bool
EphemeralVolumeSource volumeClaimTemplate=1:PersistentVolumeClaimTemplate
Event metadata=1:meta.ObjectMeta involvedObject=2:ObjectReference reason=3:string message=4:string
   source=5:EventSource firstTimestamp=6:meta.Time lastTimestamp=7:meta.Time count=8:int32
   type=9:string eventTime=10:meta.MicroTime series=11:EventSeries action=12:string
   related=13:ObjectReference reportingComponent!=14:string reportingInstance!=15:string
EventSeries count=1:int32 lastObservedTime=2:meta.MicroTime
EventSource component=1:string host=2:string
ExecAction command=1:*string
FCVolumeSource targetWWNs=1:*string lun!=2:int32 fsType=3:string readOnly=4:bool wwids=5:*string
FlexPersistentVolumeSource driver!=1:string fsType=2:string secretRef=3:SecretReference
   readOnly=4:bool options=5:{string:string}
FlexVolumeSource driver!=1:string fsType=2:string secretRef=3:LocalObjectReference readOnly=4:bool
   options=5:{string:string}
FlockerVolumeSource datasetName=1:string datasetUUID=2:string
GCEPersistentDiskVolumeSource pdName!=1:string fsType=2:string partition=3:int32 readOnly=4:bool
GRPCAction port!=1:int32 service!=2:string
GitRepoVolumeSource repository!=1:string revision=2:string directory=3:string
GlusterfsPersistentVolumeSource endpoints!=1:string path!=2:string readOnly=3:bool
   endpointsNamespace!=4:string
GlusterfsVolumeSource endpoints!=1:string path!=2:string readOnly=3:bool
HTTPGetAction path=1:string port=2:intstr.IntOrString host=3:string scheme=4:string
   httpHeaders=5:*HTTPHeader
HTTPHeader name!=1:string value!=2:string
HostAlias ip!=1:string hostnames=2:*string
HostIP ip!=1:string
HostPathVolumeSource path!=1:string type!=2:string
ISCSIPersistentVolumeSource targetPortal!=1:string iqn!=2:string lun!=3:int32
   iscsiInterface=4:string fsType=5:string readOnly=6:bool portals=7:*string
   chapAuthDiscovery=8:bool chapAuthSession=11:bool secretRef=10:SecretReference
   initiatorName!=12:string
ISCSIVolumeSource targetPortal!=1:string iqn!=2:string lun!=3:int32 iscsiInterface=4:string
   fsType=5:string readOnly=6:bool portals=7:*string chapAuthDiscovery=8:bool
   chapAuthSession=11:bool secretRef=10:LocalObjectReference initiatorName!=12:string
ImageVolumeSource reference=1:string pullPolicy=2:string
KeyToPath key!=1:string path!=2:string mode!=3:int32
Lifecycle postStart=1:LifecycleHandler preStop=2:LifecycleHandler stopSignal!=3:string
LifecycleHandler exec=1:ExecAction httpGet=2:HTTPGetAction tcpSocket=3:TCPSocketAction
   sleep=4:SleepAction
LimitRange metadata=1:meta.ObjectMeta spec=2:LimitRangeSpec
LimitRangeItem type!=1:string max=2:{string:resource.Quantity} min=3:{string:resource.Quantity}
   default=4:{string:resource.Quantity} defaultRequest=5:{string:resource.Quantity}
   maxLimitRequestRatio=6:{string:resource.Quantity}
LimitRangeSpec limits=1:*LimitRangeItem
LinuxContainerUser uid!=1:int64 gid!=2:int64 supplementalGroups=3:*int64
LoadBalancerIngress ip=1:string hostname=2:string ipMode!=3:string ports=4:*PortStatus
LoadBalancerStatus ingress=1:*LoadBalancerIngress
LocalObjectReference name=1:string
LocalVolumeSource path!=1:string fsType!=2:string
ModifyVolumeStatus targetVolumeAttributesClassName=1:string status!=2:string
NFSVolumeSource server!=1:string path!=2:string readOnly=3:bool
Namespace metadata=1:meta.ObjectMeta spec=2:NamespaceSpec status=3:NamespaceStatus
NamespaceCondition type!=1:string status!=2:string lastTransitionTime=4:meta.Time reason=5:string
   message=6:string
NamespaceSpec finalizers=1:*string
NamespaceStatus phase=1:string conditions=2:*NamespaceCondition
Node metadata=1:meta.ObjectMeta spec=2:NodeSpec status=3:NodeStatus
NodeAddress type!=1:string address!=2:string
NodeAffinity requiredDuringSchedulingIgnoredDuringExecution=1:NodeSelector
   preferredDuringSchedulingIgnoredDuringExecution=2:*PreferredSchedulingTerm
NodeCondition type!=1:string status!=2:string lastHeartbeatTime=3:meta.Time
   lastTransitionTime=4:meta.Time reason=5:string message=6:string
NodeConfigSource configMap=2:ConfigMapNodeConfigSource
NodeConfigStatus assigned=1:NodeConfigSource active=2:NodeConfigSource
   lastKnownGood=3:NodeConfigSource error=4:string
NodeDaemonEndpoints kubeletEndpoint=1:DaemonEndpoint
NodeFeatures supplementalGroupsPolicy!=1:bool
NodeRuntimeHandler name!=1:string features=2:NodeRuntimeHandlerFeatures
NodeRuntimeHandlerFeatures recursiveReadOnlyMounts!=1:bool userNamespaces!=2:bool
NodeSelector nodeSelectorTerms=1:*NodeSelectorTerm
NodeSelectorRequirement key!=1:string operator!=2:string values=3:*string
NodeSelectorTerm matchExpressions=1:*NodeSelectorRequirement
   matchFields=2:*NodeSelectorRequirement
NodeSpec podCIDR=1:string podCIDRs=7:*string providerID=3:string unschedulable=4:bool
   taints=5:*Taint configSource=6:NodeConfigSource externalID=2:string
NodeStatus capacity=1:{string:resource.Quantity} allocatable=2:{string:resource.Quantity}
   phase=3:string conditions=4:*NodeCondition addresses=5:*NodeAddress
   daemonEndpoints=6:NodeDaemonEndpoints nodeInfo=7:NodeSystemInfo images=8:*ContainerImage
   volumesInUse=9:*string volumesAttached=10:*AttachedVolume config=11:NodeConfigStatus
   runtimeHandlers=12:*NodeRuntimeHandler features=13:NodeFeatures
NodeSwapStatus capacity!=1:int64
NodeSystemInfo machineID!=1:string systemUUID!=2:string bootID!=3:string kernelVersion!=4:string
   osImage!=5:string containerRuntimeVersion!=6:string kubeletVersion!=7:string
   kubeProxyVersion!=8:string operatingSystem!=9:string architecture!=10:string
   swap=11:NodeSwapStatus
ObjectFieldSelector apiVersion=1:string fieldPath!=2:string
ObjectReference kind=1:string namespace=2:string name=3:string uid=4:string apiVersion=5:string
   resourceVersion=6:string fieldPath=7:string
PersistentVolume metadata=1:meta.ObjectMeta spec=2:PersistentVolumeSpec
   status=3:PersistentVolumeStatus
PersistentVolumeClaim metadata=1:meta.ObjectMeta spec=2:PersistentVolumeClaimSpec
   status=3:PersistentVolumeClaimStatus
PersistentVolumeClaimCondition type!=1:string status!=2:string lastProbeTime=3:meta.Time
   lastTransitionTime=4:meta.Time reason=5:string message=6:string
PersistentVolumeClaimSpec accessModes=1:*string selector=4:meta.LabelSelector
   resources=2:VolumeResourceRequirements volumeName=3:string storageClassName!=5:string
   volumeMode!=6:string dataSource=7:TypedLocalObjectReference
   dataSourceRef=8:TypedObjectReference volumeAttributesClassName!=9:string
PersistentVolumeClaimStatus phase=1:string accessModes=2:*string
   capacity=3:{string:resource.Quantity} conditions=4:*PersistentVolumeClaimCondition
   allocatedResources=5:{string:resource.Quantity} allocatedResourceStatuses=7:{string:string}
   currentVolumeAttributesClassName!=8:string modifyVolumeStatus=9:ModifyVolumeStatus
PersistentVolumeClaimTemplate metadata=1:meta.ObjectMeta spec=2:PersistentVolumeClaimSpec
PersistentVolumeClaimVolumeSource claimName!=1:string readOnly=2:bool
PersistentVolumeSource gcePersistentDisk=1:GCEPersistentDiskVolumeSource
   awsElasticBlockStore=2:AWSElasticBlockStoreVolumeSource hostPath=3:HostPathVolumeSource
   glusterfs=4:GlusterfsPersistentVolumeSource nfs=5:NFSVolumeSource
   rbd=6:RBDPersistentVolumeSource iscsi=7:ISCSIPersistentVolumeSource
   cinder=8:CinderPersistentVolumeSource cephfs=9:CephFSPersistentVolumeSource
   fc=10:FCVolumeSource flocker=11:FlockerVolumeSource flexVolume=12:FlexPersistentVolumeSource
   azureFile=13:AzureFilePersistentVolumeSource vsphereVolume=14:VsphereVirtualDiskVolumeSource
   quobyte=15:QuobyteVolumeSource azureDisk=16:AzureDiskVolumeSource
   photonPersistentDisk=17:PhotonPersistentDiskVolumeSource portworxVolume=18:PortworxVolumeSource
   scaleIO=19:ScaleIOPersistentVolumeSource local=20:LocalVolumeSource
   storageos=21:StorageOSPersistentVolumeSource csi=22:CSIPersistentVolumeSource
PersistentVolumeSpec capacity=1:{string:resource.Quantity}
   persistentVolumeSource^=2:PersistentVolumeSource accessModes=3:*string
   claimRef=4:ObjectReference persistentVolumeReclaimPolicy=5:string storageClassName=6:string
   mountOptions=7:*string volumeMode!=8:string nodeAffinity=9:VolumeNodeAffinity
   volumeAttributesClassName!=10:string
PersistentVolumeStatus phase=1:string message=2:string reason=3:string
   lastPhaseTransitionTime=4:meta.Time
PhotonPersistentDiskVolumeSource pdID!=1:string fsType=2:string
Pod metadata=1:meta.ObjectMeta spec=2:PodSpec status=3:PodStatus
PodAffinity requiredDuringSchedulingIgnoredDuringExecution=1:*PodAffinityTerm
   preferredDuringSchedulingIgnoredDuringExecution=2:*WeightedPodAffinityTerm
PodAffinityTerm labelSelector=1:meta.LabelSelector namespaces=2:*string topologyKey!=3:string
   namespaceSelector=4:meta.LabelSelector matchLabelKeys=5:*string mismatchLabelKeys=6:*string
PodAntiAffinity requiredDuringSchedulingIgnoredDuringExecution=1:*PodAffinityTerm
   preferredDuringSchedulingIgnoredDuringExecution=2:*WeightedPodAffinityTerm
PodCondition type!=1:string observedGeneration=7:int64 status!=2:string lastProbeTime=3:meta.Time
   lastTransitionTime=4:meta.Time reason=5:string message=6:string
PodDNSConfig nameservers=1:*string searches=2:*string options=3:*PodDNSConfigOption
PodDNSConfigOption name=1:string value!=2:string
PodIP ip!=1:string
PodOS name!=1:string
PodReadinessGate conditionType!=1:string
PodResourceClaim name!=1:string resourceClaimName!=3:string resourceClaimTemplateName!=4:string
PodResourceClaimStatus name!=1:string resourceClaimName!=2:string
PodSchedulingGate name!=1:string
PodSecurityContext seLinuxOptions=1:SELinuxOptions windowsOptions=8:WindowsSecurityContextOptions
   runAsUser!=2:int64 runAsGroup!=6:int64 runAsNonRoot!=3:bool supplementalGroups=4:*int64
   supplementalGroupsPolicy!=12:string fsGroup!=5:int64 sysctls=7:*Sysctl
   fsGroupChangePolicy!=9:string seccompProfile=10:SeccompProfile
   appArmorProfile=11:AppArmorProfile seLinuxChangePolicy!=13:string
PodSpec volumes=1:*Volume initContainers=20:*Container containers=2:*Container
   ephemeralContainers=34:*EphemeralContainer restartPolicy=3:string
   terminationGracePeriodSeconds!=4:int64 activeDeadlineSeconds!=5:int64 dnsPolicy=6:string
   nodeSelector=7:{string:string} serviceAccountName=8:string serviceAccount=9:string
   automountServiceAccountToken!=21:bool nodeName=10:string hostNetwork=11:bool hostPID=12:bool
   hostIPC=13:bool shareProcessNamespace!=27:bool securityContext=14:PodSecurityContext
   imagePullSecrets=15:*LocalObjectReference hostname=16:string subdomain=17:string
   affinity=18:Affinity schedulerName=19:string tolerations=22:*Toleration
   hostAliases=23:*HostAlias priorityClassName=24:string priority!=25:int32
   dnsConfig=26:PodDNSConfig readinessGates=28:*PodReadinessGate runtimeClassName!=29:string
   enableServiceLinks!=30:bool preemptionPolicy!=31:string overhead=32:{string:resource.Quantity}
   topologySpreadConstraints=33:*TopologySpreadConstraint setHostnameAsFQDN!=35:bool os=36:PodOS
   hostUsers!=37:bool schedulingGates=38:*PodSchedulingGate resourceClaims=39:*PodResourceClaim
   resources=40:ResourceRequirements
PodStatus observedGeneration=17:int64 phase=1:string conditions=2:*PodCondition message=3:string
   reason=4:string nominatedNodeName=11:string hostIP=5:string hostIPs=16:*HostIP podIP=6:string
   podIPs=12:*PodIP startTime=7:meta.Time initContainerStatuses=10:*ContainerStatus
   containerStatuses=8:*ContainerStatus qosClass=9:string
   ephemeralContainerStatuses=13:*ContainerStatus resize=14:string
   resourceClaimStatuses=15:*PodResourceClaimStatus
PodStatusResult metadata=1:meta.ObjectMeta status=2:PodStatus
PodTemplate metadata=1:meta.ObjectMeta template=2:PodTemplateSpec
PodTemplateSpec metadata=1:meta.ObjectMeta spec=2:PodSpec
PortStatus port!=1:int32 protocol!=2:string error!=3:string
PortworxVolumeSource volumeID!=1:string fsType=2:string readOnly=3:bool
PreferredSchedulingTerm weight!=1:int32 preference=2:NodeSelectorTerm
Probe handler^=1:ProbeHandler initialDelaySeconds=2:int32 timeoutSeconds=3:int32
   periodSeconds=4:int32 successThreshold=5:int32 failureThreshold=6:int32
   terminationGracePeriodSeconds!=7:int64
ProbeHandler exec=1:ExecAction httpGet=2:HTTPGetAction tcpSocket=3:TCPSocketAction
   grpc=4:GRPCAction
ProjectedVolumeSource sources=1:*VolumeProjection defaultMode!=2:int32
QuobyteVolumeSource registry!=1:string volume!=2:string readOnly=3:bool user=4:string
   group=5:string tenant=6:string
RBDPersistentVolumeSource monitors=1:*string image!=2:string fsType=3:string pool=4:string
   user=5:string keyring=6:string secretRef=7:SecretReference readOnly=8:bool
RBDVolumeSource monitors=1:*string image!=2:string fsType=3:string pool=4:string user=5:string
   keyring=6:string secretRef=7:LocalObjectReference readOnly=8:bool
RangeAllocation metadata=1:meta.ObjectMeta range!=2:string data!=3:bytes
ReplicationController metadata=1:meta.ObjectMeta spec=2:ReplicationControllerSpec
   status=3:ReplicationControllerStatus
ReplicationControllerCondition type!=1:string status!=2:string lastTransitionTime=3:meta.Time
   reason=4:string message=5:string
ReplicationControllerSpec replicas!=1:int32 minReadySeconds=4:int32 selector=2:{string:string}
   template=3:PodTemplateSpec
ReplicationControllerStatus replicas!=1:int32 fullyLabeledReplicas=2:int32 readyReplicas=4:int32
   availableReplicas=5:int32 observedGeneration=3:int64
   conditions=6:*ReplicationControllerCondition
ResourceClaim name!=1:string request=2:string
ResourceFieldSelector containerName=1:string resource!=2:string divisor=3:resource.Quantity
ResourceHealth resourceID!=1:string health=2:string
ResourceQuota metadata=1:meta.ObjectMeta spec=2:ResourceQuotaSpec status=3:ResourceQuotaStatus
ResourceQuotaSpec hard=1:{string:resource.Quantity} scopes=2:*string scopeSelector=3:ScopeSelector
ResourceQuotaStatus hard=1:{string:resource.Quantity} used=2:{string:resource.Quantity}
ResourceRequirements limits=1:{string:resource.Quantity} requests=2:{string:resource.Quantity}
   claims=3:*ResourceClaim
ResourceStatus name!=1:string resources=2:*ResourceHealth
SELinuxOptions user=1:string role=2:string type=3:string level=4:string
ScaleIOPersistentVolumeSource gateway!=1:string system!=2:string secretRef=3:SecretReference
   sslEnabled=4:bool protectionDomain=5:string storagePool=6:string storageMode=7:string
   volumeName=8:string fsType=9:string readOnly=10:bool
ScaleIOVolumeSource gateway!=1:string system!=2:string secretRef=3:LocalObjectReference
   sslEnabled=4:bool protectionDomain=5:string storagePool=6:string storageMode=7:string
   volumeName=8:string fsType=9:string readOnly=10:bool
ScopeSelector matchExpressions=1:*ScopedResourceSelectorRequirement
ScopedResourceSelectorRequirement scopeName!=1:string operator!=2:string values=3:*string
SeccompProfile type!=1:string localhostProfile!=2:string
Secret metadata=1:meta.ObjectMeta immutable!=5:bool data=2:{string:bytes}
   stringData=4:{string:string} type=3:string
SecretEnvSource localObjectReference^=1:LocalObjectReference optional!=2:bool
SecretKeySelector localObjectReference^=1:LocalObjectReference key!=2:string optional!=3:bool
SecretProjection localObjectReference^=1:LocalObjectReference items=2:*KeyToPath optional!=4:bool
SecretReference name=1:string namespace=2:string
SecretVolumeSource secretName=1:string items=2:*KeyToPath defaultMode!=3:int32 optional!=4:bool
SecurityContext capabilities=1:Capabilities privileged!=2:bool seLinuxOptions=3:SELinuxOptions
   windowsOptions=10:WindowsSecurityContextOptions runAsUser!=4:int64 runAsGroup!=8:int64
   runAsNonRoot!=5:bool readOnlyRootFilesystem!=6:bool allowPrivilegeEscalation!=7:bool
   procMount!=9:string seccompProfile=11:SeccompProfile appArmorProfile=12:AppArmorProfile
Service metadata=1:meta.ObjectMeta spec=2:ServiceSpec status=3:ServiceStatus
ServiceAccount metadata=1:meta.ObjectMeta secrets=2:*ObjectReference
   imagePullSecrets=3:*LocalObjectReference automountServiceAccountToken!=4:bool
ServiceAccountTokenProjection audience=1:string expirationSeconds!=2:int64 path!=3:string
ServicePort name=1:string protocol=2:string appProtocol!=6:string port!=3:int32
   targetPort=4:intstr.IntOrString nodePort=5:int32
ServiceSpec ports=1:*ServicePort selector=2:{string:string} clusterIP=3:string
   clusterIPs=18:*string type=4:string externalIPs=5:*string sessionAffinity=7:string
   loadBalancerIP=8:string loadBalancerSourceRanges=9:*string externalName=10:string
   externalTrafficPolicy=11:string healthCheckNodePort=12:int32 publishNotReadyAddresses=13:bool
   sessionAffinityConfig=14:SessionAffinityConfig ipFamilies=19:*string ipFamilyPolicy!=17:string
   allocateLoadBalancerNodePorts!=20:bool loadBalancerClass!=21:string
   internalTrafficPolicy!=22:string trafficDistribution!=23:string
ServiceStatus loadBalancer=1:LoadBalancerStatus conditions=2:*meta.Condition
SessionAffinityConfig clientIP=1:ClientIPConfig
SleepAction seconds!=1:int64
StorageOSPersistentVolumeSource volumeName=1:string volumeNamespace=2:string fsType=3:string
   readOnly=4:bool secretRef=5:ObjectReference
StorageOSVolumeSource volumeName=1:string volumeNamespace=2:string fsType=3:string readOnly=4:bool
   secretRef=5:LocalObjectReference
Sysctl name!=1:string value!=2:string
TCPSocketAction port=1:intstr.IntOrString host=2:string
Taint key!=1:string value=2:string effect!=3:string timeAdded=4:meta.Time
Toleration key=1:string operator=2:string value=3:string effect=4:string
   tolerationSeconds!=5:int64
TopologySelectorLabelRequirement key!=1:string values=2:*string
TopologySelectorTerm matchLabelExpressions=1:*TopologySelectorLabelRequirement
TopologySpreadConstraint maxSkew!=1:int32 topologyKey!=2:string whenUnsatisfiable!=3:string
   labelSelector=4:meta.LabelSelector minDomains!=5:int32 nodeAffinityPolicy!=6:string
   nodeTaintsPolicy!=7:string matchLabelKeys=8:*string
TypedLocalObjectReference apiGroup!=1:string kind!=2:string name!=3:string
TypedObjectReference apiGroup!=1:string kind!=2:string name!=3:string namespace!=4:string
Volume name!=1:string volumeSource^=2:VolumeSource
VolumeDevice name!=1:string devicePath!=2:string
VolumeMount name!=1:string readOnly=2:bool recursiveReadOnly!=7:string mountPath!=3:string
   subPath=4:string mountPropagation!=5:string subPathExpr=6:string
VolumeMountStatus name!=1:string mountPath!=2:string readOnly=3:bool recursiveReadOnly!=4:string
VolumeNodeAffinity required=1:NodeSelector
VolumeProjection secret=1:SecretProjection downwardAPI=2:DownwardAPIProjection
   configMap=3:ConfigMapProjection serviceAccountToken=4:ServiceAccountTokenProjection
   clusterTrustBundle=5:ClusterTrustBundleProjection
VolumeResourceRequirements limits=1:{string:resource.Quantity}
   requests=2:{string:resource.Quantity}
VolumeSource hostPath=1:HostPathVolumeSource emptyDir=2:EmptyDirVolumeSource
   gcePersistentDisk=3:GCEPersistentDiskVolumeSource
   awsElasticBlockStore=4:AWSElasticBlockStoreVolumeSource gitRepo=5:GitRepoVolumeSource
   secret=6:SecretVolumeSource nfs=7:NFSVolumeSource iscsi=8:ISCSIVolumeSource
   glusterfs=9:GlusterfsVolumeSource persistentVolumeClaim=10:PersistentVolumeClaimVolumeSource
   rbd=11:RBDVolumeSource flexVolume=12:FlexVolumeSource cinder=13:CinderVolumeSource
   cephfs=14:CephFSVolumeSource flocker=15:FlockerVolumeSource
   downwardAPI=16:DownwardAPIVolumeSource fc=17:FCVolumeSource azureFile=18:AzureFileVolumeSource
   configMap=19:ConfigMapVolumeSource vsphereVolume=20:VsphereVirtualDiskVolumeSource
   quobyte=21:QuobyteVolumeSource azureDisk=22:AzureDiskVolumeSource
   photonPersistentDisk=23:PhotonPersistentDiskVolumeSource projected=26:ProjectedVolumeSource
   portworxVolume=24:PortworxVolumeSource scaleIO=25:ScaleIOVolumeSource
   storageos=27:StorageOSVolumeSource csi=28:CSIVolumeSource ephemeral=29:EphemeralVolumeSource
   image=30:ImageVolumeSource
VsphereVirtualDiskVolumeSource volumePath!=1:string fsType=2:string storagePolicyName=3:string
   storagePolicyID=4:string
WeightedPodAffinityTerm weight!=1:int32 podAffinityTerm=2:PodAffinityTerm
WindowsSecurityContextOptions gmsaCredentialSpecName!=1:string gmsaCredentialSpec!=2:string
   runAsUserName!=3:string hostProcess!=4:bool
@discovery k8s.io.api.discovery.v1
Endpoint addresses=1:*string conditions=2:EndpointConditions hostname!=3:string
   targetRef=4:core.ObjectReference deprecatedTopology=5:{string:string} nodeName!=6:string
   zone!=7:string hints=8:EndpointHints
EndpointConditions ready!=1:bool serving!=2:bool terminating!=3:bool
EndpointHints forZones=1:*ForZone forNodes=2:*ForNode
EndpointPort name!=1:string protocol!=2:string port!=3:int32 appProtocol!=4:string
EndpointSlice metadata=1:meta.ObjectMeta addressType!=4:string endpoints=2:*Endpoint
   ports=3:*EndpointPort
ForNode name!=1:string
ForZone name!=1:string
@events k8s.io.api.events.v1
Event metadata=1:meta.ObjectMeta eventTime=2:meta.MicroTime series=3:EventSeries
   reportingController=4:string reportingInstance=5:string action=6:string reason=7:string
   regarding=8:core.ObjectReference related=9:core.ObjectReference note=10:string type=11:string
   deprecatedSource=12:core.EventSource deprecatedFirstTimestamp=13:meta.Time
   deprecatedLastTimestamp=14:meta.Time deprecatedCount=15:int32
EventSeries count!=1:int32 lastObservedTime=2:meta.MicroTime
@networking k8s.io.api.networking.v1
HTTPIngressPath path=1:string pathType!=3:string backend=2:IngressBackend
HTTPIngressRuleValue paths=1:*HTTPIngressPath
IPAddress metadata=1:meta.ObjectMeta spec=2:IPAddressSpec
IPAddressSpec parentRef=1:ParentReference
IPBlock cidr!=1:string except=2:*string
Ingress metadata=1:meta.ObjectMeta spec=2:IngressSpec status=3:IngressStatus
IngressBackend service=4:IngressServiceBackend resource=3:core.TypedLocalObjectReference
IngressClass metadata=1:meta.ObjectMeta spec=2:IngressClassSpec
IngressClassParametersReference aPIGroup/apiGroup!=1:string kind!=2:string name!=3:string
   scope!=4:string namespace!=5:string
IngressClassSpec controller=1:string parameters=2:IngressClassParametersReference
IngressLoadBalancerIngress ip=1:string hostname=2:string ports=4:*IngressPortStatus
IngressLoadBalancerStatus ingress=1:*IngressLoadBalancerIngress
IngressPortStatus port!=1:int32 protocol!=2:string error!=3:string
IngressRule host=1:string ingressRuleValue^=2:IngressRuleValue
IngressRuleValue http=1:HTTPIngressRuleValue
IngressServiceBackend name!=1:string port=2:ServiceBackendPort
IngressSpec ingressClassName!=4:string defaultBackend=1:IngressBackend tls=2:*IngressTLS
   rules=3:*IngressRule
IngressStatus loadBalancer=1:IngressLoadBalancerStatus
IngressTLS hosts=1:*string secretName=2:string
NetworkPolicy metadata=1:meta.ObjectMeta spec=2:NetworkPolicySpec
NetworkPolicyEgressRule ports=1:*NetworkPolicyPort to=2:*NetworkPolicyPeer
NetworkPolicyIngressRule ports=1:*NetworkPolicyPort from=2:*NetworkPolicyPeer
NetworkPolicyPeer podSelector=1:meta.LabelSelector namespaceSelector=2:meta.LabelSelector
   ipBlock=3:IPBlock
NetworkPolicyPort protocol!=1:string port=2:intstr.IntOrString endPort!=3:int32
NetworkPolicySpec podSelector=1:meta.LabelSelector ingress=2:*NetworkPolicyIngressRule
   egress=3:*NetworkPolicyEgressRule policyTypes=4:*string
ParentReference group=1:string resource=2:string namespace=3:string name=4:string
ServiceBackendPort name=1:string number=2:int32
ServiceCIDR metadata=1:meta.ObjectMeta spec=2:ServiceCIDRSpec status=3:ServiceCIDRStatus
ServiceCIDRSpec cidrs=1:*string
ServiceCIDRStatus conditions=1:*meta.Condition
@policy k8s.io.api.policy.v1
Eviction metadata=1:meta.ObjectMeta deleteOptions=2:meta.DeleteOptions
PodDisruptionBudget metadata=1:meta.ObjectMeta spec=2:PodDisruptionBudgetSpec
   status=3:PodDisruptionBudgetStatus
PodDisruptionBudgetSpec minAvailable=1:intstr.IntOrString selector=2:meta.LabelSelector
   maxUnavailable=3:intstr.IntOrString unhealthyPodEvictionPolicy!=4:string
PodDisruptionBudgetStatus observedGeneration=1:int64 disruptedPods=2:{string:meta.Time}
   disruptionsAllowed!=3:int32 currentHealthy!=4:int32 desiredHealthy!=5:int32
   expectedPods!=6:int32 conditions=7:*meta.Condition
@rbac k8s.io.api.rbac.v1
AggregationRule clusterRoleSelectors=1:*meta.LabelSelector
ClusterRole metadata=1:meta.ObjectMeta rules=2:*PolicyRule aggregationRule=3:AggregationRule
ClusterRoleBinding metadata=1:meta.ObjectMeta subjects=2:*Subject roleRef=3:RoleRef
PolicyRule verbs=1:*string apiGroups=2:*string resources=3:*string resourceNames=4:*string
   nonResourceURLs=5:*string
Role metadata=1:meta.ObjectMeta rules=2:*PolicyRule
RoleBinding metadata=1:meta.ObjectMeta subjects=2:*Subject roleRef=3:RoleRef
RoleRef apiGroup!=1:string kind!=2:string name!=3:string
Subject kind!=1:string apiGroup=2:string name!=3:string namespace=4:string
@scheduling k8s.io.api.scheduling.v1
PriorityClass metadata=1:meta.ObjectMeta value!=2:int32 globalDefault=3:bool description=4:string
   preemptionPolicy!=5:string
@storage k8s.io.api.storage.v1
CSIDriver metadata=1:meta.ObjectMeta spec=2:CSIDriverSpec
CSIDriverSpec attachRequired!=1:bool podInfoOnMount!=2:bool volumeLifecycleModes=3:*string
   storageCapacity!=4:bool fsGroupPolicy!=5:string tokenRequests=6:*TokenRequest
   requiresRepublish!=7:bool seLinuxMount!=8:bool nodeAllocatableUpdatePeriodSeconds!=9:int64
CSINode metadata=1:meta.ObjectMeta spec=2:CSINodeSpec
CSINodeDriver name!=1:string nodeID!=2:string topologyKeys=3:*string
   allocatable=4:VolumeNodeResources
CSINodeSpec drivers=1:*CSINodeDriver
CSIStorageCapacity metadata=1:meta.ObjectMeta nodeTopology=2:meta.LabelSelector
   storageClassName!=3:string capacity=4:resource.Quantity maximumVolumeSize=5:resource.Quantity
StorageClass metadata=1:meta.ObjectMeta provisioner!=2:string parameters=3:{string:string}
   reclaimPolicy!=4:string mountOptions=5:*string allowVolumeExpansion!=6:bool
   volumeBindingMode!=7:string allowedTopologies=8:*core.TopologySelectorTerm
TokenRequest audience!=1:string expirationSeconds!=2:int64
VolumeAttachment metadata=1:meta.ObjectMeta spec=2:VolumeAttachmentSpec
   status=3:VolumeAttachmentStatus
VolumeAttachmentSource persistentVolumeName!=1:string inlineVolumeSpec=2:core.PersistentVolumeSpec
VolumeAttachmentSpec attacher!=1:string source=2:VolumeAttachmentSource nodeName!=3:string
VolumeAttachmentStatus attached!=1:bool attachmentMetadata=2:{string:string}
   attachError=3:VolumeError detachError=4:VolumeError
VolumeError time=1:meta.Time message=2:string errorCode!=3:int32
VolumeNodeResources count!=1:int32
"#;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::jiff::Timestamp;
    use k8s_pb::api::apps::v1 as pb_apps;
    use k8s_pb::api::coordination::v1 as pb_coordination;
    use k8s_pb::api::core::v1 as pb_core;
    use k8s_pb::apimachinery::pkg::api::resource::Quantity as PbQuantity;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as pb_meta;
    use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
    use k8s_pb::apimachinery::pkg::util::intstr::IntOrString as PbIntOrString;
    use prost::Message as _;
    use serde_json::json;

    use super::*;

    /// A body as kubectl sends it: magic, then a runtime.Unknown wrapping the object.
    fn body(api_version: &str, kind: &str, object: &impl prost::Message) -> Vec<u8> {
        let envelope = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.to_owned()),
                kind: Some(kind.to_owned()),
            }),
            raw: Some(object.encode_to_vec()),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut out = MAGIC.to_vec();
        out.extend(envelope.encode_to_vec());
        out
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn schema_loads_and_covers_supported_kinds() {
        let schema = schema().expect("schema");
        for (api_version, kind) in [
            ("v1", "Pod"),
            ("v1", "Service"),
            ("v1", "ConfigMap"),
            ("v1", "Secret"),
            ("v1", "Namespace"),
            ("v1", "Node"),
            ("v1", "Event"),
            ("v1", "Endpoints"),
            ("v1", "ServiceAccount"),
            ("v1", "Binding"),
            ("apps/v1", "Deployment"),
            ("apps/v1", "ReplicaSet"),
            ("apps/v1", "StatefulSet"),
            ("apps/v1", "DaemonSet"),
            ("batch/v1", "Job"),
            ("batch/v1", "CronJob"),
            ("coordination.k8s.io/v1", "Lease"),
            ("events.k8s.io/v1", "Event"),
            ("discovery.k8s.io/v1", "EndpointSlice"),
            ("networking.k8s.io/v1", "Ingress"),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
            ("policy/v1", "Eviction"),
            ("policy/v1", "PodDisruptionBudget"),
            ("scheduling.k8s.io/v1", "PriorityClass"),
            ("autoscaling/v2", "HorizontalPodAutoscaler"),
            ("storage.k8s.io/v1", "StorageClass"),
            ("v1", "DeleteOptions"),
            ("apps/v1", "DeleteOptions"),
            ("meta.k8s.io/v1", "DeleteOptions"),
        ] {
            assert!(
                schema.message_for(api_version, kind).is_some(),
                "{api_version} {kind} not found"
            );
        }
        assert!(schema.message_for("v1", "PodSpec").is_none());
        assert!(schema
            .message_for("apps.example.com/v1", "Deployment")
            .is_none());
        assert_eq!(
            schema
                .message_for("events.k8s.io/v1", "Event")
                .unwrap()
                .full_name(),
            "k8s.io.api.events.v1.Event"
        );
    }

    #[test]
    fn deployment_matches_k8s_openapi() {
        use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
        use k8s_openapi::api::core::v1::{
            Container, ContainerPort, PodSpec, PodTemplateSpec, ResourceRequirements,
        };
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};

        let app = labels(&[("app", "web")]);
        let pb = pb_apps::Deployment {
            metadata: Some(pb_meta::ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                labels: app.clone(),
                creation_timestamp: Some(pb_meta::Time {
                    seconds: Some(1_700_000_000),
                    nanos: Some(0),
                }),
                ..Default::default()
            }),
            spec: Some(pb_apps::DeploymentSpec {
                replicas: Some(3),
                selector: Some(pb_meta::LabelSelector {
                    match_labels: app.clone(),
                    ..Default::default()
                }),
                template: Some(pb_core::PodTemplateSpec {
                    metadata: Some(pb_meta::ObjectMeta {
                        labels: app.clone(),
                        ..Default::default()
                    }),
                    spec: Some(pb_core::PodSpec {
                        containers: vec![pb_core::Container {
                            name: Some("nginx".into()),
                            image: Some("nginx:1.27".into()),
                            ports: vec![pb_core::ContainerPort {
                                name: Some("http".into()),
                                container_port: Some(80),
                                protocol: Some("TCP".into()),
                                ..Default::default()
                            }],
                            resources: Some(pb_core::ResourceRequirements {
                                requests: [
                                    (
                                        "cpu".to_owned(),
                                        PbQuantity {
                                            string: Some("250m".into()),
                                        },
                                    ),
                                    (
                                        "memory".to_owned(),
                                        PbQuantity {
                                            string: Some("64Mi".into()),
                                        },
                                    ),
                                ]
                                .into_iter()
                                .collect(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            status: None,
        };

        let expected = Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                labels: Some(app.clone()),
                creation_timestamp: Some(Time(Timestamp::from_second(1_700_000_000).unwrap())),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(3),
                selector: LabelSelector {
                    match_labels: Some(app.clone()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(app),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "nginx".into(),
                            image: Some("nginx:1.27".into()),
                            ports: Some(vec![ContainerPort {
                                name: Some("http".into()),
                                container_port: 80,
                                protocol: Some("TCP".into()),
                                ..Default::default()
                            }]),
                            resources: Some(ResourceRequirements {
                                requests: Some(BTreeMap::from([
                                    ("cpu".to_owned(), Quantity("250m".into())),
                                    ("memory".to_owned(), Quantity("64Mi".into())),
                                ])),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        };

        let decoded = decode_object(&body("apps/v1", "Deployment", &pb)).expect("decode");
        assert_eq!(decoded, serde_json::to_value(&expected).unwrap());
        assert_eq!(
            decoded["metadata"]["creationTimestamp"],
            "2023-11-14T22:13:20Z"
        );
        let typed: Deployment = serde_json::from_value(decoded).expect("k8s-openapi accepts it");
        assert_eq!(typed, expected);
    }

    /// Go writes every non-pointer field; the JSON must still look like Go's `omitempty` JSON.
    #[test]
    fn go_style_zero_values_follow_go_json() {
        let go_meta = |name: &str, labels: BTreeMap<String, String>| pb_meta::ObjectMeta {
            name: Some(name.into()),
            generate_name: Some(String::new()),
            namespace: Some(String::new()),
            self_link: Some(String::new()),
            uid: Some(String::new()),
            resource_version: Some(String::new()),
            generation: Some(0),
            // Go marshals the zero metav1.Time as an empty message.
            creation_timestamp: Some(pb_meta::Time::default()),
            labels,
            ..Default::default()
        };
        let app = labels(&[("app", "web")]);
        let pb = pb_apps::Deployment {
            metadata: Some(go_meta("web", app.clone())),
            spec: Some(pb_apps::DeploymentSpec {
                replicas: Some(0),
                selector: Some(pb_meta::LabelSelector {
                    match_labels: app.clone(),
                    ..Default::default()
                }),
                template: Some(pb_core::PodTemplateSpec {
                    metadata: Some(go_meta("", app.clone())),
                    spec: Some(pb_core::PodSpec {
                        containers: vec![pb_core::Container {
                            name: Some("nginx".into()),
                            image: Some("nginx".into()),
                            working_dir: Some(String::new()),
                            ports: vec![pb_core::ContainerPort {
                                name: Some(String::new()),
                                host_port: Some(0),
                                container_port: Some(80),
                                protocol: Some("TCP".into()),
                                host_ip: Some(String::new()),
                            }],
                            resources: Some(pb_core::ResourceRequirements::default()),
                            termination_message_path: Some(String::new()),
                            image_pull_policy: Some(String::new()),
                            stdin: Some(false),
                            tty: Some(false),
                            ..Default::default()
                        }],
                        restart_policy: Some(String::new()),
                        dns_policy: Some(String::new()),
                        service_account_name: Some(String::new()),
                        host_network: Some(false),
                        automount_service_account_token: Some(false),
                        ..Default::default()
                    }),
                }),
                strategy: Some(pb_apps::DeploymentStrategy {
                    r#type: Some(String::new()),
                    rolling_update: None,
                }),
                min_ready_seconds: Some(0),
                paused: Some(false),
                ..Default::default()
            }),
            status: Some(pb_apps::DeploymentStatus {
                observed_generation: Some(0),
                replicas: Some(0),
                updated_replicas: Some(0),
                ready_replicas: Some(0),
                available_replicas: Some(0),
                unavailable_replicas: Some(0),
                ..Default::default()
            }),
        };

        let decoded = decode_object(&body("apps/v1", "Deployment", &pb)).expect("decode");
        assert_eq!(
            decoded,
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                        "spec": {
                            "containers": [{
                                "name": "nginx",
                                "image": "nginx",
                                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "resources": {}
                            }],
                            "automountServiceAccountToken": false
                        }
                    },
                    "strategy": {}
                },
                "status": {}
            })
        );
        let typed: k8s_openapi::api::apps::v1::Deployment =
            serde_json::from_value(decoded).expect("k8s-openapi accepts it");
        assert_eq!(typed.spec.unwrap().replicas, Some(0));
    }

    #[test]
    fn pod_inline_fields_are_flattened() {
        use k8s_openapi::api::core::v1::{
            ConfigMapKeySelector, ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, Pod,
            PodSpec, Volume, VolumeMount,
        };
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

        let config_ref = || {
            Some(pb_core::LocalObjectReference {
                name: Some("app-config".into()),
            })
        };
        let pb = pb_core::Pod {
            metadata: Some(pb_meta::ObjectMeta {
                name: Some("runner".into()),
                labels: labels(&[("run", "runner")]),
                ..Default::default()
            }),
            spec: Some(pb_core::PodSpec {
                volumes: vec![pb_core::Volume {
                    name: Some("cfg".into()),
                    volume_source: Some(pb_core::VolumeSource {
                        config_map: Some(pb_core::ConfigMapVolumeSource {
                            local_object_reference: config_ref(),
                            default_mode: Some(420),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                }],
                containers: vec![pb_core::Container {
                    name: Some("runner".into()),
                    image: Some("busybox".into()),
                    command: vec!["sh".into(), "-c".into(), "sleep 1".into()],
                    env: vec![pb_core::EnvVar {
                        name: Some("MODE".into()),
                        value: None,
                        value_from: Some(pb_core::EnvVarSource {
                            config_map_key_ref: Some(pb_core::ConfigMapKeySelector {
                                local_object_reference: config_ref(),
                                key: Some("mode".into()),
                                optional: Some(false),
                            }),
                            ..Default::default()
                        }),
                    }],
                    volume_mounts: vec![pb_core::VolumeMount {
                        name: Some("cfg".into()),
                        mount_path: Some("/etc/app".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                restart_policy: Some("Never".into()),
                termination_grace_period_seconds: Some(0),
                ..Default::default()
            }),
            status: None,
        };

        let expected = Pod {
            metadata: ObjectMeta {
                name: Some("runner".into()),
                labels: Some(labels(&[("run", "runner")])),
                ..Default::default()
            },
            spec: Some(PodSpec {
                volumes: Some(vec![Volume {
                    name: "cfg".into(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: "app-config".into(),
                        default_mode: Some(420),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                containers: vec![Container {
                    name: "runner".into(),
                    image: Some("busybox".into()),
                    command: Some(vec!["sh".into(), "-c".into(), "sleep 1".into()]),
                    env: Some(vec![EnvVar {
                        name: "MODE".into(),
                        value: None,
                        value_from: Some(EnvVarSource {
                            config_map_key_ref: Some(ConfigMapKeySelector {
                                name: "app-config".into(),
                                key: "mode".into(),
                                optional: Some(false),
                            }),
                            ..Default::default()
                        }),
                    }]),
                    volume_mounts: Some(vec![VolumeMount {
                        name: "cfg".into(),
                        mount_path: "/etc/app".into(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                restart_policy: Some("Never".into()),
                termination_grace_period_seconds: Some(0),
                ..Default::default()
            }),
            status: None,
        };

        let decoded = decode_object(&body("v1", "Pod", &pb)).expect("decode");
        assert_eq!(decoded, serde_json::to_value(&expected).unwrap());
    }

    #[test]
    fn secret_bytes_are_base64() {
        use k8s_openapi::api::core::v1::Secret;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        use k8s_openapi::ByteString;

        let pb = pb_core::Secret {
            metadata: Some(pb_meta::ObjectMeta {
                name: Some("db".into()),
                ..Default::default()
            }),
            data: [("password".to_owned(), b"s3cr3t\x00\xff".to_vec())]
                .into_iter()
                .collect(),
            string_data: labels(&[("user", "admin")]),
            r#type: Some("Opaque".into()),
            immutable: Some(true),
        };
        let expected = Secret {
            metadata: ObjectMeta {
                name: Some("db".into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                "password".to_owned(),
                ByteString(b"s3cr3t\x00\xff".to_vec()),
            )])),
            string_data: Some(labels(&[("user", "admin")])),
            type_: Some("Opaque".into()),
            immutable: Some(true),
        };
        let decoded = decode_object(&body("v1", "Secret", &pb)).expect("decode");
        assert_eq!(decoded, serde_json::to_value(&expected).unwrap());
        assert_eq!(decoded["data"]["password"], "czNjcjN0AP8=");
    }

    #[test]
    fn service_int_or_string_ports() {
        use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

        let pb = pb_core::Service {
            metadata: Some(pb_meta::ObjectMeta {
                name: Some("web".into()),
                ..Default::default()
            }),
            spec: Some(pb_core::ServiceSpec {
                ports: vec![
                    pb_core::ServicePort {
                        name: Some("http".into()),
                        protocol: Some("TCP".into()),
                        port: Some(80),
                        target_port: Some(PbIntOrString {
                            r#type: Some(1),
                            int_val: Some(0),
                            str_val: Some("http".into()),
                        }),
                        ..Default::default()
                    },
                    pb_core::ServicePort {
                        name: Some("https".into()),
                        port: Some(443),
                        target_port: Some(PbIntOrString {
                            r#type: Some(0),
                            int_val: Some(8443),
                            str_val: Some(String::new()),
                        }),
                        ..Default::default()
                    },
                ],
                selector: labels(&[("app", "web")]),
                r#type: Some("ClusterIP".into()),
                ..Default::default()
            }),
            status: None,
        };
        let expected = Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                ports: Some(vec![
                    ServicePort {
                        name: Some("http".into()),
                        protocol: Some("TCP".into()),
                        port: 80,
                        target_port: Some(IntOrString::String("http".into())),
                        ..Default::default()
                    },
                    ServicePort {
                        name: Some("https".into()),
                        port: 443,
                        target_port: Some(IntOrString::Int(8443)),
                        ..Default::default()
                    },
                ]),
                selector: Some(labels(&[("app", "web")])),
                type_: Some("ClusterIP".into()),
                ..Default::default()
            }),
            status: None,
        };
        let decoded = decode_object(&body("v1", "Service", &pb)).expect("decode");
        assert_eq!(decoded, serde_json::to_value(&expected).unwrap());
    }

    #[test]
    fn lease_micro_time_keeps_microseconds() {
        use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

        let pb = pb_coordination::Lease {
            metadata: Some(pb_meta::ObjectMeta {
                name: Some("node-1".into()),
                namespace: Some("kube-node-lease".into()),
                ..Default::default()
            }),
            spec: Some(pb_coordination::LeaseSpec {
                holder_identity: Some("node-1".into()),
                lease_duration_seconds: Some(40),
                renew_time: Some(pb_meta::MicroTime {
                    seconds: Some(1_700_000_000),
                    nanos: Some(123_456_789),
                }),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        let expected = Lease {
            metadata: ObjectMeta {
                name: Some("node-1".into()),
                namespace: Some("kube-node-lease".into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some("node-1".into()),
                lease_duration_seconds: Some(40),
                renew_time: Some(MicroTime(
                    Timestamp::new(1_700_000_000, 123_456_000).unwrap(),
                )),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        let decoded = decode_object(&body("coordination.k8s.io/v1", "Lease", &pb)).expect("decode");
        assert_eq!(decoded, serde_json::to_value(&expected).unwrap());
        assert_eq!(decoded["spec"]["renewTime"], "2023-11-14T22:13:20.123456Z");
    }

    #[test]
    fn delete_options_with_any_group_version() {
        let pb = pb_meta::DeleteOptions {
            grace_period_seconds: Some(0),
            propagation_policy: Some("Foreground".into()),
            dry_run: vec!["All".into()],
            ..Default::default()
        };
        for api_version in ["v1", "meta.k8s.io/v1", "apps/v1"] {
            let decoded = decode_object(&body(api_version, "DeleteOptions", &pb)).expect("decode");
            assert_eq!(
                decoded,
                json!({
                    "apiVersion": api_version,
                    "kind": "DeleteOptions",
                    "gracePeriodSeconds": 0,
                    "propagationPolicy": "Foreground",
                    "dryRun": ["All"]
                })
            );
        }
    }

    #[test]
    fn raw_extension_is_embedded_json() {
        let pb = pb_apps::ControllerRevision {
            metadata: Some(pb_meta::ObjectMeta {
                name: Some("web-5d4f".into()),
                ..Default::default()
            }),
            data: Some(RawExtension {
                raw: Some(br#"{"spec":{"template":{"x":1}}}"#.to_vec()),
            }),
            revision: Some(2),
        };
        let decoded = decode_object(&body("apps/v1", "ControllerRevision", &pb)).expect("decode");
        assert_eq!(
            decoded,
            json!({
                "apiVersion": "apps/v1",
                "kind": "ControllerRevision",
                "metadata": {"name": "web-5d4f"},
                "data": {"spec": {"template": {"x": 1}}},
                "revision": 2
            })
        );
    }

    #[test]
    fn json_content_type_in_envelope() {
        let envelope = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some("v1".into()),
                kind: Some("Namespace".into()),
            }),
            raw: Some(br#"{"metadata":{"name":"dev"}}"#.to_vec()),
            content_encoding: None,
            content_type: Some("application/json".into()),
        };
        let mut bytes = MAGIC.to_vec();
        bytes.extend(envelope.encode_to_vec());
        assert_eq!(
            decode_object(&bytes).expect("decode"),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}})
        );
    }

    #[test]
    fn errors() {
        let namespace = pb_core::Namespace {
            metadata: Some(pb_meta::ObjectMeta {
                name: Some("dev".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let good = body("v1", "Namespace", &namespace);
        assert_eq!(
            decode_object(&good).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}})
        );

        assert!(matches!(
            decode_object(&good[4..]),
            Err(Error::MissingMagic)
        ));
        assert!(matches!(
            decode_object(b"k8s\0\x0a\x05\x01"),
            Err(Error::MalformedEnvelope(_))
        ));
        assert!(matches!(
            decode_object(&body("", "Namespace", &namespace)),
            Err(Error::BadEnvelope(_))
        ));
        match decode_object(&body("example.com/v1", "Widget", &namespace)) {
            Err(Error::UnsupportedKind { api_version, kind }) => {
                assert_eq!(
                    (api_version.as_str(), kind.as_str()),
                    ("example.com/v1", "Widget")
                );
            }
            other => panic!("expected UnsupportedKind, got {other:?}"),
        }
        // A string where ObjectMeta (a message) is expected: wire type mismatch inside `metadata`.
        let garbage = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some("v1".into()),
                kind: Some("Namespace".into()),
            }),
            raw: Some(vec![0x0a, 0x03, 0x08, 0x01]),
            ..Default::default()
        };
        let mut bytes = MAGIC.to_vec();
        bytes.extend(garbage.encode_to_vec());
        assert!(matches!(decode_object(&bytes), Err(Error::Decode { .. })));
    }
}
