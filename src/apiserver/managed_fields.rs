//! Field ownership (`metadata.managedFields`) kept as upstream's field manager keeps it, and
//! server-side apply's merge.
//!
//! Every write records who changed what: a create, update or patch is an `Update` by its field
//! manager (the `fieldManager` parameter, else the User-Agent up to its first `/`), which comes
//! to own the fields it added or changed, taking them from whoever owned them; fields it removed
//! leave every owner. Server-side apply merges the applied configuration into the live object
//! by the schema (structs field by field, lists by their `x-kubernetes-list-type`: keyed lists
//! such as containers by `name`, sets by value, the rest whole), removes what the manager
//! applied before and no longer applies (unless another manager owns it), and refuses to change
//! a field another manager owns unless forced. The paths and their order are upstream's, so
//! `kubectl get -o yaml --show-managed-fields` reads as it does against a real cluster.
//!
//! The schema comes from k8s-openapi's definitions; which lists are keyed (and by what), which
//! are sets, and which structs and maps are atomic are the `+listType`, `+listMapKey`,
//! `+structType` and `+mapType` markers of upstream's 1.33 types, in the tables below.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use super::fieldpath::{display_path, Element, Set};
use super::go_shape;

/// How the items of a list that is not atomic are told apart.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ListKind {
    /// A set of scalars: by value.
    Set,
    /// By these fields of each item.
    Map(&'static [&'static str]),
}

/// What a field holds, as ownership sees it.
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    /// A struct whose fields are owned one by one (its definition).
    Struct(String),
    /// A list whose items are owned one by one.
    List(Box<Ty>, ListKind),
    /// A map whose entries are owned one by one.
    Map(Box<Ty>),
    /// Owned whole: scalars, atomic lists, structs and maps, quantities, times.
    Leaf,
    /// No schema (an unknown kind): objects are maps of the same, lists are atomic.
    Deduced,
}

static LEAF: Ty = Ty::Leaf;
static DEDUCED: Ty = Ty::Deduced;

/// Lists that are not atomic: `(types, field, kind)`, types by their Go names.
const LISTS: &[(&[&str], &str, ListKind)] = &[
    (&["ObjectMeta"], "ownerReferences", ListKind::Map(&["uid"])),
    (&["ObjectMeta"], "finalizers", ListKind::Set),
    (
        &["ResourceRequirements"],
        "claims",
        ListKind::Map(&["name"]),
    ),
    (
        &["Container", "EphemeralContainer"],
        "ports",
        ListKind::Map(&["containerPort", "protocol"]),
    ),
    (
        &["Container", "EphemeralContainer"],
        "env",
        ListKind::Map(&["name"]),
    ),
    (
        &["Container", "EphemeralContainer", "ContainerStatus"],
        "volumeMounts",
        ListKind::Map(&["mountPath"]),
    ),
    (
        &["Container", "EphemeralContainer"],
        "volumeDevices",
        ListKind::Map(&["devicePath"]),
    ),
    (
        &["ContainerStatus"],
        "allocatedResourcesStatus",
        ListKind::Map(&["name"]),
    ),
    (
        &["ResourceStatus"],
        "resources",
        ListKind::Map(&["resourceID"]),
    ),
    (&["PodSpec"], "volumes", ListKind::Map(&["name"])),
    (&["PodSpec"], "initContainers", ListKind::Map(&["name"])),
    (&["PodSpec"], "containers", ListKind::Map(&["name"])),
    (
        &["PodSpec"],
        "ephemeralContainers",
        ListKind::Map(&["name"]),
    ),
    (&["PodSpec"], "imagePullSecrets", ListKind::Map(&["name"])),
    (&["PodSpec"], "hostAliases", ListKind::Map(&["ip"])),
    (
        &["PodSpec"],
        "topologySpreadConstraints",
        ListKind::Map(&["topologyKey", "whenUnsatisfiable"]),
    ),
    (&["PodSpec"], "schedulingGates", ListKind::Map(&["name"])),
    (&["PodSpec"], "resourceClaims", ListKind::Map(&["name"])),
    (
        &[
            "PodStatus",
            "ReplicationControllerStatus",
            "ServiceStatus",
            "NodeStatus",
            "NamespaceStatus",
            "ComponentStatus",
            "DeploymentStatus",
            "ReplicaSetStatus",
            "StatefulSetStatus",
            "DaemonSetStatus",
        ],
        "conditions",
        ListKind::Map(&["type"]),
    ),
    (&["PodStatus"], "podIPs", ListKind::Map(&["ip"])),
    (
        &["PodStatus"],
        "resourceClaimStatuses",
        ListKind::Map(&["name"]),
    ),
    (
        &["ServiceSpec"],
        "ports",
        ListKind::Map(&["port", "protocol"]),
    ),
    (&["ServiceAccount"], "secrets", ListKind::Map(&["name"])),
    (&["NodeSpec"], "podCIDRs", ListKind::Set),
    (&["NodeStatus"], "addresses", ListKind::Map(&["type"])),
    (&["Endpoint"], "addresses", ListKind::Set),
];

/// Structs owned whole (`+structType=atomic`), by Go name.
const ATOMIC_STRUCTS: &[&str] = &[
    "LabelSelector",
    "OwnerReference",
    "ObjectReference",
    "LocalObjectReference",
    "TypedLocalObjectReference",
    "SecretReference",
    "ObjectFieldSelector",
    "ResourceFieldSelector",
    "ConfigMapKeySelector",
    "SecretKeySelector",
    "NodeSelector",
    "NodeSelectorTerm",
    "TopologySelectorTerm",
    "ScopeSelector",
    "EndpointAddress",
    "EndpointPort",
];

/// Maps owned whole (`+mapType=atomic`): `(type, field)`.
const ATOMIC_MAPS: &[(&str, &str)] = &[
    ("PodSpec", "nodeSelector"),
    ("ServiceSpec", "selector"),
    ("ReplicationControllerSpec", "selector"),
];

/// Defaults of list keys (the schema's `default`), used when an item leaves its key out:
/// `(item type, field, default)`.
const KEY_DEFAULTS: &[(&str, &str, &str)] = &[
    ("ContainerPort", "protocol", "TCP"),
    ("ServicePort", "protocol", "TCP"),
];

/// The Go name of a definition (`io.k8s.api.core.v1.PodSpec` -> `PodSpec`).
fn go_name(definition: &str) -> &str {
    definition.rsplit('.').next().unwrap_or(definition)
}

type Fields = HashMap<String, HashMap<String, Ty>>;

/// Every definition's fields and what they hold.
fn schema() -> &'static Fields {
    static SCHEMA: OnceLock<Fields> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let definitions = go_shape::definitions();
        definitions
            .iter()
            .filter_map(|(name, schema)| {
                let properties = schema.get("properties")?.as_object()?;
                let fields = properties
                    .iter()
                    .map(|(field, s)| (field.clone(), field_ty(name, field, s, definitions)))
                    .collect();
                Some((name.clone(), fields))
            })
            .collect()
    })
}

fn ref_ty(name: &str, definitions: &Map<String, Value>) -> Ty {
    let is_struct = definitions
        .get(name)
        .is_some_and(|d| d.get("properties").is_some());
    if is_struct && !ATOMIC_STRUCTS.contains(&go_name(name)) {
        Ty::Struct(name.to_string())
    } else {
        Ty::Leaf
    }
}

fn item_ty(schema: Option<&Value>, definitions: &Map<String, Value>) -> Ty {
    match schema.and_then(go_shape::ref_name) {
        Some(name) => ref_ty(name, definitions),
        None => Ty::Leaf,
    }
}

fn field_ty(owner: &str, field: &str, schema: &Value, definitions: &Map<String, Value>) -> Ty {
    if let Some(name) = go_shape::ref_name(schema) {
        return ref_ty(name, definitions);
    }
    let owner = go_name(owner);
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => LISTS
            .iter()
            .find(|(types, f, _)| types.contains(&owner) && *f == field)
            .map_or(Ty::Leaf, |(_, _, kind)| {
                Ty::List(Box::new(item_ty(schema.get("items"), definitions)), *kind)
            }),
        Some("object") if schema.get("additionalProperties").is_some() => {
            if ATOMIC_MAPS.contains(&(owner, field)) {
                Ty::Leaf
            } else {
                Ty::Map(Box::new(item_ty(
                    schema.get("additionalProperties"),
                    definitions,
                )))
            }
        }
        _ => Ty::Leaf,
    }
}

/// The type of an object, from its `apiVersion` and `kind`.
fn root_ty(object: &Value) -> &'static Ty {
    static ROOTS: OnceLock<HashMap<String, Ty>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        schema()
            .keys()
            .map(|name| (name.clone(), Ty::Struct(name.clone())))
            .collect()
    });
    let api_version = object["apiVersion"].as_str().unwrap_or("");
    let kind = object["kind"].as_str().unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let group = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    roots
        .get(&format!("io.k8s.api.{group}.{version}.{kind}"))
        .unwrap_or(&DEDUCED)
}

/// The type of field or key `key` of an object of type `ty`.
fn child_ty(ty: &'static Ty, key: &str) -> &'static Ty {
    match ty {
        Ty::Struct(definition) => schema()
            .get(definition)
            .and_then(|fields| fields.get(key))
            .unwrap_or(&LEAF),
        Ty::Map(item) => item,
        Ty::Deduced => &DEDUCED,
        _ => &LEAF,
    }
}

/// Whether `key` is a declared field of a struct type (not a map key).
fn is_struct_field(ty: &Ty, key: &str) -> bool {
    match ty {
        Ty::Struct(definition) => schema()
            .get(definition)
            .is_some_and(|fields| fields.contains_key(key)),
        _ => false,
    }
}

/// How a node is walked: as an object, a list of owned items, or a leaf. A value of another
/// JSON type than the schema says is a leaf.
enum Node<'t> {
    Object,
    List(&'t Ty, ListKind),
    Leaf,
}

fn node_of<'t>(ty: &'t Ty, values: [Option<&Value>; 2]) -> Node<'t> {
    let all = |f: fn(&Value) -> bool| values.iter().flatten().all(|v| v.is_null() || f(v));
    match ty {
        Ty::Struct(_) | Ty::Map(_) | Ty::Deduced if all(Value::is_object) => Node::Object,
        Ty::List(item, kind) if all(Value::is_array) => Node::List(item, *kind),
        _ => Node::Leaf,
    }
}

/// The path element of a list item.
fn item_element(item: &Value, item_ty: &Ty, kind: ListKind) -> Result<Element, String> {
    match kind {
        ListKind::Set => Ok(Element::Value(item.clone())),
        ListKind::Map(keys) => {
            let item_type = match item_ty {
                Ty::Struct(d) => go_name(d),
                _ => "",
            };
            let mut fields = Vec::with_capacity(keys.len());
            for key in keys {
                let value = match item.get(key).filter(|v| !v.is_null()) {
                    Some(v) => v.clone(),
                    None => KEY_DEFAULTS
                        .iter()
                        .find(|(t, f, _)| *t == item_type && f == key)
                        .map(|(_, _, d)| json!(d))
                        .ok_or_else(|| {
                            format!(
                                "associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
                            )
                        })?,
                };
                fields.push(((*key).to_string(), value));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(Element::Key(fields))
        }
    }
}

/// The items of a list grouped by path element, in first-seen order.
fn index_items<'v>(
    items: &'v [Value],
    item_ty: &Ty,
    kind: ListKind,
) -> Result<Vec<(Element, Vec<&'v Value>)>, String> {
    let mut groups: Vec<(Element, Vec<&'v Value>)> = Vec::with_capacity(items.len());
    let mut at: BTreeMap<Element, usize> = BTreeMap::new();
    for item in items {
        let element = item_element(item, item_ty, kind)?;
        match at.get(&element) {
            Some(&i) => groups[i].1.push(item),
            None => {
                at.insert(element.clone(), groups.len());
                groups.push((element, vec![item]));
            }
        }
    }
    Ok(groups)
}

// ---------------------------------------------------------------------------------------------
// Comparing two versions of an object
// ---------------------------------------------------------------------------------------------

/// What changed between two versions of an object.
#[derive(Debug, Default)]
struct Comparison {
    added: Set,
    modified: Set,
    removed: Set,
}

/// Compare `lhs` and `rhs` (absent: `None`), skipping the subtrees in `ignore`.
fn compare(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    ty: &'static Ty,
    ignore: Option<&Set>,
    path: &mut Vec<Element>,
    out: &mut Comparison,
) -> Result<(), String> {
    let leaf = |path: &Vec<Element>, out: &mut Comparison| match (lhs, rhs) {
        (None, _) => out.added.insert(path),
        (_, None) => out.removed.insert(path),
        (Some(l), Some(r)) if l != r => out.modified.insert(path),
        _ => {}
    };
    let mut in_leaf = false;
    match node_of(ty, [lhs, rhs]) {
        Node::Leaf => {
            leaf(path, out);
            in_leaf = true;
        }
        Node::Object => {
            let l = lhs.and_then(Value::as_object);
            let r = rhs.and_then(Value::as_object);
            if l.is_none_or(Map::is_empty) && r.is_none_or(Map::is_empty) {
                leaf(path, out);
                in_leaf = true;
            } else {
                let keys: BTreeSet<&String> = l.into_iter().chain(r).flat_map(Map::keys).collect();
                for key in keys {
                    let element = Element::Field(key.clone());
                    let skip = ignore.and_then(|i| i.child(&element));
                    if skip.is_some_and(|s| s.has(&[])) {
                        continue;
                    }
                    path.push(element);
                    let result = compare(
                        l.and_then(|m| m.get(key)),
                        r.and_then(|m| m.get(key)),
                        child_ty(ty, key),
                        skip,
                        path,
                        out,
                    );
                    path.pop();
                    result?;
                }
            }
        }
        Node::List(item_ty, kind) => {
            let l = lhs.and_then(Value::as_array);
            let r = rhs.and_then(Value::as_array);
            if l.is_none_or(Vec::is_empty) && r.is_none_or(Vec::is_empty) {
                leaf(path, out);
                in_leaf = true;
            } else {
                compare_items(
                    l.map_or(&[][..], Vec::as_slice),
                    r.map_or(&[][..], Vec::as_slice),
                    item_ty,
                    kind,
                    path,
                    out,
                )?;
            }
        }
    }
    if !in_leaf {
        if lhs.is_none() {
            out.added.insert(path);
        } else if rhs.is_none() {
            out.removed.insert(path);
        }
    }
    Ok(())
}

fn compare_items(
    lhs: &[Value],
    rhs: &[Value],
    item_ty: &'static Ty,
    kind: ListKind,
    path: &mut Vec<Element>,
    out: &mut Comparison,
) -> Result<(), String> {
    let left = index_items(lhs, item_ty, kind)?;
    let right = index_items(rhs, item_ty, kind)?;
    let left_at: BTreeMap<&Element, &[&Value]> =
        left.iter().map(|(e, v)| (e, v.as_slice())).collect();
    let right_at: BTreeMap<&Element, &[&Value]> =
        right.iter().map(|(e, v)| (e, v.as_slice())).collect();
    let order = left.iter().map(|(e, _)| e).chain(
        right
            .iter()
            .map(|(e, _)| e)
            .filter(|e| !left_at.contains_key(e)),
    );
    for element in order {
        let l = left_at.get(element).copied().unwrap_or_default();
        let r = right_at.get(element).copied().unwrap_or_default();
        path.push(element.clone());
        // Duplicated items (which upstream tolerates in live objects) are compared as a whole.
        let result = match (l.len(), r.len()) {
            (0..=1, 0..=1) => compare(
                l.first().copied(),
                r.first().copied(),
                item_ty,
                None,
                path,
                out,
            ),
            (2.., 2..) => {
                if l != r {
                    out.modified.insert(path);
                }
                Ok(())
            }
            (2.., _) => {
                let result = r
                    .first()
                    .map_or(Ok(()), |r| compare(None, Some(r), item_ty, None, path, out));
                out.removed.insert(path);
                result
            }
            _ => {
                let result = l
                    .first()
                    .map_or(Ok(()), |l| compare(Some(l), None, item_ty, None, path, out));
                out.added.insert(path);
                result
            }
        };
        path.pop();
        result?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The fields an applied configuration sets
// ---------------------------------------------------------------------------------------------

fn to_field_set(
    value: &Value,
    ty: &'static Ty,
    path: &mut Vec<Element>,
    set: &mut Set,
) -> Result<(), String> {
    match node_of(ty, [Some(value), None]) {
        Node::Leaf => set.insert(path),
        Node::Object => {
            for (key, v) in value.as_object().into_iter().flatten() {
                path.push(Element::Field(key.clone()));
                to_field_set(v, child_ty(ty, key), path, set)?;
                let empty = v.is_null() || v.as_object().is_some_and(Map::is_empty);
                if empty || !is_struct_field(ty, key) {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Node::List(item_ty, kind) => {
            let items = value.as_array().map_or(&[][..], Vec::as_slice);
            for (element, group) in index_items(items, item_ty, kind)? {
                path.push(element);
                if group.len() == 1 {
                    to_field_set(group[0], item_ty, path, set)?;
                }
                set.insert(path);
                path.pop();
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Merging an applied configuration into the live object
// ---------------------------------------------------------------------------------------------

fn merge(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    ty: &'static Ty,
) -> Result<Option<Value>, String> {
    let (l, r) = match (lhs, rhs) {
        (l, None) => return Ok(l.cloned()),
        (None, Some(r)) => return Ok(Some(r.clone())),
        (Some(l), Some(r)) => (l, r),
    };
    match (node_of(ty, [Some(l), Some(r)]), l, r) {
        // An applied null is an empty map or list: it keeps the live items (only an atomic
        // field or a scalar is set to null).
        (Node::Object, Value::Object(lm), Value::Null) if !lm.is_empty() => Ok(Some(l.clone())),
        (Node::List(..), Value::Array(la), Value::Null) if !la.is_empty() => Ok(Some(l.clone())),
        (Node::Object, Value::Object(lm), Value::Object(rm)) => {
            let mut out = lm.clone();
            for (key, rv) in rm {
                if let Some(v) = merge(lm.get(key), Some(rv), child_ty(ty, key))? {
                    out.insert(key.clone(), v);
                }
            }
            Ok(Some(Value::Object(out)))
        }
        (Node::List(item_ty, kind), Value::Array(la), Value::Array(ra)) => {
            merge_items(la, ra, item_ty, kind).map(|items| Some(Value::Array(items)))
        }
        _ => Ok(Some(r.clone())),
    }
}

/// Merge two lists of owned items: shared items merge, items only in the configuration are
/// placed as the configuration orders them relative to the shared ones, and live-only items
/// keep their place (upstream's order).
fn merge_items(
    lhs: &[Value],
    rhs: &[Value],
    item_ty: &'static Ty,
    kind: ListKind,
) -> Result<Vec<Value>, String> {
    let mut rhs_order = Vec::with_capacity(rhs.len());
    let mut rhs_items: BTreeMap<Element, &Value> = BTreeMap::new();
    for item in rhs {
        let element = item_element(item, item_ty, kind)?;
        if rhs_items.insert(element.clone(), item).is_some() {
            return Err(format!("duplicate entries for key {element}"));
        }
        rhs_order.push(element);
    }
    let mut lhs_order = Vec::with_capacity(lhs.len());
    // A duplicated live item has no single value to merge with.
    let mut lhs_items: BTreeMap<Element, Option<&Value>> = BTreeMap::new();
    for item in lhs {
        let element = item_element(item, item_ty, kind)?;
        lhs_items
            .entry(element.clone())
            .and_modify(|v| *v = None)
            .or_insert(Some(item));
        lhs_order.push(element);
    }
    let mut shared: VecDeque<&Element> = rhs_order
        .iter()
        .filter(|e| lhs_items.contains_key(*e))
        .collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: BTreeSet<&Element> = BTreeSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let (mut li, mut ri) = (0, 0);
    // An item of the configuration merged into its live counterpart (if there is one).
    let merge_at = |e: &Element| {
        let live = lhs_items.get(e).copied().flatten();
        merge(live, rhs_items.get(e).copied(), item_ty)
    };
    while li < lhs_order.len() || ri < rhs_order.len() {
        if li < lhs_order.len() && ri < rhs_order.len() {
            let element = &lhs_order[li];
            if *element == rhs_order[ri] {
                merged_rhs.insert(element);
                out.extend(merge_at(element)?);
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if rhs_items.contains_key(element) && next_shared.is_some_and(|n| n != element) {
                li += 1;
                continue;
            }
        }
        if li < lhs_order.len() {
            let element = &lhs_order[li];
            if !rhs_items.contains_key(element) {
                out.extend(merge(lhs.get(li), None, item_ty)?);
                li += 1;
                continue;
            } else if merged_rhs.contains(element) {
                li += 1;
            }
        }
        if ri < rhs_order.len() {
            let element = &rhs_order[ri];
            merged_rhs.insert(element);
            out.extend(merge_at(element)?);
            ri += 1;
            if next_shared == Some(element) {
                next_shared = shared.pop_front();
            }
        }
    }
    Ok(out)
}

/// Remove from `value` the members of `remove` that nothing in `keep` is at or under.
fn remove_items(value: &mut Value, remove: &Set, keep: Option<&Set>, ty: &'static Ty) {
    let gone = |element: &Element| {
        remove.child(element).is_some_and(|r| r.has(&[]))
            && keep.and_then(|k| k.child(element)).is_none()
    };
    match (node_of(ty, [Some(value), None]), value) {
        (Node::Object, Value::Object(map)) => {
            map.retain(|key, _| !gone(&Element::Field(key.clone())));
            for (key, v) in map.iter_mut() {
                let element = Element::Field(key.clone());
                if let Some(r) = remove.child(&element) {
                    remove_items(
                        v,
                        r,
                        keep.and_then(|k| k.child(&element)),
                        child_ty(ty, key),
                    );
                }
            }
        }
        (Node::List(item_ty, kind), Value::Array(items)) => {
            items.retain(|item| item_element(item, item_ty, kind).map_or(true, |e| !gone(&e)));
            for item in items.iter_mut() {
                let Ok(element) = item_element(item, item_ty, kind) else {
                    continue;
                };
                if let Some(r) = remove.child(&element) {
                    remove_items(item, r, keep.and_then(|k| k.child(&element)), item_ty);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// managedFields entries
// ---------------------------------------------------------------------------------------------

/// The most `Update` entries kept; older ones are merged into `ancient-changes`, as upstream
/// caps them.
const MAX_UPDATE_MANAGERS: usize = 10;

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: String,
    set: Set,
}

impl Entry {
    /// Whether two entries are the same manager: appliers regardless of API version.
    fn same_manager(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == "Apply" || self.api_version == other.api_version)
    }

    /// Upstream's manager identifier: the entry's JSON without fields and time (and, for an
    /// applier, without its API version), in Go's field order.
    fn identifier(&self) -> String {
        let mut id = format!(
            "{{\"manager\":{},\"operation\":{}",
            json!(self.manager),
            json!(self.operation)
        );
        if self.operation != "Apply" && !self.api_version.is_empty() {
            id.push_str(&format!(",\"apiVersion\":{}", json!(self.api_version)));
        }
        if !self.subresource.is_empty() {
            id.push_str(&format!(",\"subresource\":{}", json!(self.subresource)));
        }
        id.push('}');
        id
    }

    /// The manager as upstream's conflict messages name it.
    fn printed(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }

    fn encode(&self) -> Value {
        let mut entry = Map::new();
        if !self.manager.is_empty() {
            entry.insert("manager".into(), json!(self.manager));
        }
        entry.insert("operation".into(), json!(self.operation));
        entry.insert("apiVersion".into(), json!(self.api_version));
        if let Some(time) = &self.time {
            entry.insert("time".into(), json!(time));
        }
        entry.insert("fieldsType".into(), json!("FieldsV1"));
        entry.insert("fieldsV1".into(), self.set.to_fields_v1());
        if !self.subresource.is_empty() {
            entry.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(entry)
    }

    fn decode(entry: &Value) -> Result<Entry, String> {
        let text = |k: &str| entry[k].as_str().unwrap_or("").to_string();
        let operation = text("operation");
        if !matches!(operation.as_str(), "Apply" | "Update") {
            return Err(format!("unknown managed fields operation {operation:?}"));
        }
        if entry.get("fieldsType").is_some_and(|t| t != "FieldsV1") {
            return Err(format!("unknown fieldsType {}", entry["fieldsType"]));
        }
        Ok(Entry {
            manager: text("manager"),
            operation,
            api_version: text("apiVersion"),
            time: entry["time"].as_str().map(String::from),
            subresource: text("subresource"),
            set: Set::from_fields_v1(entry.get("fieldsV1").unwrap_or(&json!({})))?,
        })
    }
}

fn decode_entries(value: Option<&Value>) -> Result<Vec<Entry>, String> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(Entry::decode)
        .collect()
}

/// Upstream's order: by operation, then time, manager, API version and subresource.
fn encode_entries(mut entries: Vec<Entry>) -> Option<Value> {
    entries.retain(|e| !e.set.is_empty());
    if entries.is_empty() {
        return None;
    }
    entries.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    Some(Value::Array(entries.iter().map(Entry::encode).collect()))
}

/// Keep at most [`MAX_UPDATE_MANAGERS`] `Update` entries, as upstream's capManagersManager
/// does: from the oldest, an entry whose API version was seen before is merged into that
/// version's `ancient-changes` bucket (the first one seen becomes the bucket when needed).
fn cap_updates(entries: &mut Vec<Entry>) {
    let mut updaters: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].operation == "Update")
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort_by(|&a, &b| entries[a].time.cmp(&entries[b].time));
    let mut length = updaters.len();
    let mut first_of_version: HashMap<String, usize> = HashMap::new();
    let mut gone: BTreeSet<usize> = BTreeSet::new();
    let is_bucket = |e: &Entry, version: &str| {
        e.manager == ANCIENT
            && e.operation == "Update"
            && e.subresource.is_empty()
            && e.api_version == version
    };
    for i in updaters {
        if length <= MAX_UPDATE_MANAGERS {
            break;
        }
        let version = entries[i].api_version.clone();
        let Some(&first) = first_of_version.get(&version) else {
            first_of_version.insert(version, i);
            continue;
        };
        let bucket = match (0..entries.len())
            .find(|&b| !gone.contains(&b) && b != i && is_bucket(&entries[b], &version))
        {
            Some(b) => b,
            None => {
                // The first entry of this version becomes the bucket.
                entries[first].manager = ANCIENT.into();
                entries[first].subresource.clear();
                first
            }
        };
        let merged = entries[bucket].set.union(&entries[i].set);
        entries[bucket].set = merged;
        entries[bucket].time = entries[i].time.clone();
        gone.insert(i);
        length -= 1;
    }
    let mut index = 0;
    entries.retain(|_| {
        let keep = !gone.contains(&index);
        index += 1;
        keep
    });
}

const ANCIENT: &str = "ancient-changes";

/// Paths no manager owns (upstream strips them from every set), exactly these, not their
/// children.
fn stripped() -> &'static Set {
    static STRIPPED: OnceLock<Set> = OnceLock::new();
    STRIPPED.get_or_init(|| {
        let mut set = Set::default();
        let f = |s: &str| Element::Field(s.to_string());
        set.insert(&[f("apiVersion")]);
        set.insert(&[f("kind")]);
        set.insert(&[f("metadata")]);
        for field in [
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "generation",
            "managedFields",
            "resourceVersion",
        ] {
            set.insert(&[f("metadata"), f(field)]);
        }
        set
    })
}

/// What a write through `subresource` does not own: the main resource leaves the status to
/// its subresource, the status subresource leaves the spec; nobody owns the managed fields.
fn ignored(has_status: bool, subresource: &str) -> Set {
    let mut set = Set::default();
    let f = |s: &str| Element::Field(s.to_string());
    set.insert(&[f("metadata"), f("managedFields")]);
    match subresource {
        "status" => set.insert(&[f("spec")]),
        "" if has_status => set.insert(&[f("status")]),
        _ => {}
    }
    set
}

/// Whether a request's managedFields ask for a reset: `[]` or `[{}]` (one empty entry).
fn is_reset(value: Option<&Value>) -> bool {
    value.and_then(Value::as_array).is_some_and(|a| {
        a.is_empty() || (a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty))
    })
}

/// Keep a request's `managedFields: []` (a reset) through admission, which drops empty lists as
/// Go's encoding does: written as the other reset form, `[{}]`.
pub(crate) fn keep_reset(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if meta
            .get("managedFields")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            meta.insert("managedFields".into(), json!([{}]));
        }
    }
}

/// Fields the server sets on a create after upstream's field manager has run, by kind: the
/// DefaultTolerationSeconds and Priority admissions, the namespace and Service registries.
const SET_AFTER_RECORDING: &[(&str, &[&str])] = &[
    ("Pod", &["spec", "tolerations"]),
    ("Pod", &["spec", "priority"]),
    ("Pod", &["spec", "preemptionPolicy"]),
    ("Namespace", &["spec", "finalizers"]),
    ("Service", &["spec", "clusterIP"]),
    ("Service", &["spec", "clusterIPs"]),
    ("Service", &["spec", "ipFamilies"]),
    ("Service", &["spec", "ipFamilyPolicy"]),
    ("Service", &["spec", "healthCheckNodePort"]),
];

/// Into `set`: the keyed list at `at` if the client sent none of it, else the items of `new` the
/// client did not send (by `key`).
fn added_items(set: &mut Set, at: &[Element], sent: &Value, new: &Value, key: &str) {
    let Some(items) = new.as_array() else {
        return;
    };
    let sent: Vec<&Value> = sent.as_array().into_iter().flatten().collect();
    if sent.is_empty() {
        set.insert(at);
        return;
    }
    for item in items {
        if !sent.iter().any(|s| s[key] == item[key]) {
            let mut path = at.to_vec();
            path.push(Element::Key(vec![(key.to_string(), item[key].clone())]));
            set.insert(&path);
        }
    }
}

/// The paths of `new` the server set on a create (see [`SET_AFTER_RECORDING`]) that the client
/// did not send.
fn set_by_server(sent: &Value, new: &Value) -> Set {
    let kind = new["kind"].as_str().unwrap_or("");
    let f = |s: &str| Element::Field(s.to_string());
    let mut set = Set::default();
    for (_, path) in SET_AFTER_RECORDING.iter().filter(|(k, _)| *k == kind) {
        let sent_it = path.iter().try_fold(sent, |v, p| v.get(p)).is_some();
        if !sent_it {
            set.insert(&path.iter().map(|p| f(p)).collect::<Vec<_>>());
        }
    }
    // What the ServiceAccount admission adds to a pod: its account, pull secrets, the token
    // volume and its mounts.
    if kind == "Pod" {
        let (sent_spec, new_spec) = (&sent["spec"], &new["spec"]);
        for field in ["serviceAccountName", "imagePullSecrets"] {
            if sent_spec.get(field).is_none() {
                set.insert(&[f("spec"), f(field)]);
            }
        }
        if sent_spec.get("serviceAccountName").is_none()
            && sent_spec.get("serviceAccount").is_none()
        {
            set.insert(&[f("spec"), f("serviceAccount")]);
        }
        added_items(
            &mut set,
            &[f("spec"), f("volumes")],
            &sent_spec["volumes"],
            &new_spec["volumes"],
            "name",
        );
        for list in ["initContainers", "containers"] {
            for container in new_spec[list].as_array().into_iter().flatten() {
                let name = &container["name"];
                let sent_container = sent_spec[list]
                    .as_array()
                    .and_then(|cs| cs.iter().find(|c| c["name"] == *name))
                    .unwrap_or(&Value::Null);
                let at = [
                    f("spec"),
                    f(list),
                    Element::Key(vec![("name".to_string(), name.clone())]),
                    f("volumeMounts"),
                ];
                added_items(
                    &mut set,
                    &at,
                    &sent_container["volumeMounts"],
                    &container["volumeMounts"],
                    "mountPath",
                );
            }
        }
    }
    // A Service's node ports, port by port.
    if kind == "Service" {
        let ty = child_ty(child_ty(root_ty(new), "spec"), "ports");
        if let Ty::List(item_ty, list_kind) = ty {
            let sent_ports = sent["spec"]["ports"]
                .as_array()
                .map_or(&[][..], Vec::as_slice);
            for port in new["spec"]["ports"].as_array().into_iter().flatten() {
                let Ok(element) = item_element(port, item_ty, *list_kind) else {
                    continue;
                };
                let sent_port = sent_ports
                    .iter()
                    .find(|p| item_element(p, item_ty, *list_kind).ok().as_ref() == Some(&element));
                if sent_port.is_none_or(|p| p.get("nodePort").is_none()) {
                    set.insert(&[f("spec"), f("ports"), element, f("nodePort")]);
                }
            }
        }
    }
    set
}

/// The zero object of a type, as upstream's field manager compares a create against it.
fn zero_object(object: &Value) -> Value {
    let mut zero = json!({});
    if let Ty::Struct(definition) = root_ty(object) {
        go_shape::shape_as(definition, &mut zero);
    }
    zero
}

fn take_managed_fields(object: &mut Value) -> Option<Value> {
    object
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove("managedFields"))
}

fn put_managed_fields(object: &mut Value, entries: Option<Value>) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        match entries {
            Some(e) => meta.insert("managedFields".into(), e),
            None => meta.remove("managedFields"),
        };
    }
}

/// Who writes, through what, and when.
pub(crate) struct Writer<'a> {
    /// The field manager.
    pub manager: &'a str,
    /// `status`, `scale`, ... or empty for the main resource.
    pub subresource: &'a str,
    /// The API version the request used (`apps/v1`).
    pub api_version: String,
    /// Whether the kind has a status subresource (the main resource then owns no status).
    pub has_status: bool,
    /// The time of the write (RFC 3339).
    pub now: String,
}

/// Record a create (`live` is `None`), update or patch in `new`'s managedFields: the writer
/// comes to own what it added or changed, and nobody keeps what it removed. A request that
/// brings managedFields of its own sets them first (`[{}]` clears them); one that brings none
/// keeps the live object's.
///
/// On a create, `sent` is the object as the client sent it: what the server fills in after
/// upstream's field manager has run (admission's default tolerations, a Service's addresses and
/// node ports, a namespace's finalizers) is nobody's unless the client sent it.
pub(crate) fn record_update(
    live: Option<&Value>,
    sent: Option<&Value>,
    new: &mut Value,
    writer: &Writer<'_>,
) {
    let requested = take_managed_fields(new);
    let live_entries = || decode_entries(live.and_then(|l| l["metadata"].get("managedFields")));
    let entries = if !writer.subresource.is_empty() {
        live_entries()
    } else if is_reset(requested.as_ref()) {
        Ok(Vec::new())
    } else {
        match decode_entries(requested.as_ref()) {
            Ok(e) if !e.is_empty() => Ok(e),
            _ => live_entries(),
        }
    };
    let zero;
    let live = match live {
        Some(l) => l,
        None => {
            zero = zero_object(new);
            &zero
        }
    };
    let ignore = ignored(writer.has_status, writer.subresource);
    let mut comparison = Comparison::default();
    let compared = compare(
        Some(live),
        Some(new),
        root_ty(new),
        Some(&ignore),
        &mut Vec::new(),
        &mut comparison,
    );
    let mut entries = match (entries, compared) {
        (Ok(e), Ok(())) => e,
        (Err(e), _) | (_, Err(e)) => {
            // Upstream's field manager never fails a write: it drops the managed fields rather
            // than keep any it cannot vouch for.
            tracing::debug!(error = %e, "managed fields dropped");
            put_managed_fields(new, None);
            return;
        }
    };
    let changed = comparison.added.union(&comparison.modified);
    for entry in &mut entries {
        entry.set = entry
            .set
            .difference(&changed)
            .difference(&comparison.removed);
    }
    let mut mine = changed.difference(stripped());
    if let Some(sent) = sent {
        mine = mine.without_subtrees(&set_by_server(sent, new));
    }
    if !mine.is_empty() {
        let me = Entry {
            manager: writer.manager.to_string(),
            operation: "Update".into(),
            api_version: writer.api_version.clone(),
            time: Some(writer.now.clone()),
            subresource: writer.subresource.to_string(),
            set: mine,
        };
        match entries.iter_mut().find(|e| e.same_manager(&me)) {
            Some(previous) => {
                previous.set = previous.set.union(&me.set);
                previous.time = me.time;
            }
            None => entries.push(me),
        }
    }
    cap_updates(&mut entries);
    put_managed_fields(new, encode_entries(entries));
}

/// Why an apply was refused.
#[derive(Debug)]
pub(crate) enum ApplyError {
    /// Fields other managers own would change: `(manager as upstream prints it, path)`, grouped
    /// by manager.
    Conflicts(Vec<(String, String)>),
    /// The configuration does not fit the schema (a keyed list item without its key).
    Invalid(String),
    /// The configuration is refused as it is (it carries managedFields).
    BadRequest(String),
}

/// Server-side apply of `config` by `writer` to `live` (`None`: the object does not exist):
/// the merged object, with its managedFields.
pub(crate) fn apply(
    live: Option<&Value>,
    config: &Value,
    force: bool,
    writer: &Writer<'_>,
) -> Result<Value, ApplyError> {
    let ty = root_ty(config);
    if config["metadata"]
        .get("managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let mut config = config.clone();
    if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    let mut entries =
        decode_entries(live.and_then(|l| l["metadata"].get("managedFields"))).unwrap_or_default();
    let mut live = match live {
        Some(l) => l.clone(),
        None => zero_object(&config),
    };
    take_managed_fields(&mut live);
    let ignore = ignored(writer.has_status, writer.subresource);
    let mut merged = merge(Some(&live), Some(&config), ty)
        .map_err(ApplyError::Invalid)?
        .unwrap_or_default();
    let mut applied = Set::default();
    to_field_set(&config, ty, &mut Vec::new(), &mut applied).map_err(ApplyError::Invalid)?;
    let applied = applied.without_subtrees(&ignore).difference(stripped());
    let me = Entry {
        manager: writer.manager.to_string(),
        operation: "Apply".into(),
        api_version: writer.api_version.clone(),
        time: Some(writer.now.clone()),
        subresource: writer.subresource.to_string(),
        set: applied,
    };
    let last = entries
        .iter()
        .position(|e| e.same_manager(&me))
        .map(|i| entries.remove(i));
    // What this manager applied before and applies no more goes, unless someone owns it.
    if let Some(last) = &last {
        let owned = entries
            .iter()
            .fold(me.set.clone(), |all, e| all.union(&e.set));
        remove_items(&mut merged, &last.set, Some(&owned), ty);
    }
    let mut comparison = Comparison::default();
    compare(
        Some(&live),
        Some(&merged),
        ty,
        Some(&ignore),
        &mut Vec::new(),
        &mut comparison,
    )
    .map_err(ApplyError::Invalid)?;
    let changed = comparison.added.union(&comparison.modified);
    let mut conflicts: Vec<(&Entry, Set)> = entries
        .iter()
        .map(|e| (e, e.set.intersection(&changed)))
        .filter(|(_, c)| !c.is_empty())
        .collect();
    if !force && !conflicts.is_empty() {
        // Grouped as upstream sorts managers: by their identifier's JSON.
        conflicts.sort_by_key(|(e, _)| e.identifier());
        return Err(ApplyError::Conflicts(
            conflicts
                .iter()
                .flat_map(|(e, set)| {
                    set.paths()
                        .into_iter()
                        .map(|p| (e.printed(), display_path(&p)))
                })
                .collect(),
        ));
    }
    for entry in &mut entries {
        entry.set = entry
            .set
            .difference(&changed)
            .difference(&comparison.removed);
    }
    let unchanged = merged == live;
    entries.push(Entry {
        // An apply that changes nothing records no time of its own (upstream times only
        // applies that changed the object), keeping the last one's.
        time: match (&last, unchanged) {
            (last, true) => last.as_ref().and_then(|l| l.time.clone()),
            _ => me.time.clone(),
        },
        ..me
    });
    put_managed_fields(&mut merged, encode_entries(entries));
    Ok(merged)
}

#[cfg(test)]
mod tests;
