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
//!   [`DescriptorPool`] built, once, from `SCHEMA` (the data file `protobuf_schema.txt` beside
//!   this one): a compact transcription of the Kubernetes 1.33 `generated.proto` files
//!   (`k8s.io/api` and `k8s.io/apimachinery` v0.33.9).
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
//! object kind of core/v1, apps/v1, authentication.k8s.io/v1 (TokenRequest), autoscaling/v1+v2,
//! batch/v1, coordination.k8s.io/v1, discovery.k8s.io/v1, events.k8s.io/v1, networking.k8s.io/v1,
//! policy/v1, rbac.authorization.k8s.io/v1, scheduling.k8s.io/v1 and storage.k8s.io/v1, plus meta/v1
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

/// The Kubernetes 1.33 protobuf schema in the format described in the module docs, kept in
/// `protobuf_schema.txt` beside this file.
///
/// Transcribed from the `generated.proto` files of `k8s.io/api` and `k8s.io/apimachinery`
/// v0.33.9, keeping the messages reachable from the supported kinds, with the `!`, `^` and
/// `/json` marks taken from the Go struct tags of the same release.
const SCHEMA: &str = include_str!("protobuf_schema.txt");

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
            ("authentication.k8s.io/v1", "TokenRequest"),
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
