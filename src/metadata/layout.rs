//! The layout: steps, inspections, keys and expiry, from and to JSON.

use super::rules::rules;
use super::*;

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub expected_materials: Vec<Rule>,
    pub expected_products: Vec<Rule>,
    pub pubkeys: Vec<String>,
    pub expected_command: Vec<String>,
    pub threshold: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    pub name: String,
    pub expected_materials: Vec<Rule>,
    pub expected_products: Vec<Rule>,
    pub run: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub expires: String,
    pub readme: String,
    /// keyid -> key dict, kept raw (extra fields such as `keyid_hash_algorithms` are signed too).
    pub keys: BTreeMap<String, Value>,
    pub steps: Vec<Step>,
    pub inspect: Vec<Inspection>,
}

impl Layout {
    pub fn to_value(&self) -> Value {
        json!({
            "_type": "layout",
            "expires": self.expires,
            "readme": self.readme,
            "keys": Value::Object(self.keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            "steps": self.steps.iter().map(|s| json!({
                "_type": "step",
                "name": s.name,
                "expected_materials": rules_to_value(&s.expected_materials),
                "expected_products": rules_to_value(&s.expected_products),
                "pubkeys": s.pubkeys,
                "expected_command": s.expected_command,
                "threshold": s.threshold,
            })).collect::<Vec<_>>(),
            "inspect": self.inspect.iter().map(|i| json!({
                "_type": "inspection",
                "name": i.name,
                "expected_materials": rules_to_value(&i.expected_materials),
                "expected_products": rules_to_value(&i.expected_products),
                "run": i.run,
            })).collect::<Vec<_>>(),
        })
    }

    pub fn from_value(v: &Value) -> Result<Self> {
        let o = obj(v, "layout")?;
        let expires = req_string(o, "expires", "layout")?;
        crate::time::parse_expires(&expires)?;
        let keys_obj = opt_object(o, "keys", "layout")?;
        let mut keys = BTreeMap::new();
        for (id, key) in keys_obj {
            if !is_hex(&id) {
                return Err(Error::format(format!("layout key id '{id}' is not hex")));
            }
            if !key.is_object() {
                return Err(Error::format(format!("layout key '{id}' is not an object")));
            }
            if key.get("keyid").and_then(Value::as_str).is_none() {
                return Err(Error::format(format!("layout key '{id}' has no 'keyid'")));
            }
            keys.insert(id, key);
        }
        let mut names = std::collections::HashSet::new();
        let mut steps = Vec::new();
        for s in o.get("steps").map(|v| v.as_array().ok_or_else(|| Error::format("layout 'steps' is not a list"))).transpose()?.into_iter().flatten() {
            let so = obj(s, "step")?;
            let name = req_string(so, "name", "step")?;
            let threshold = match so.get("threshold") {
                None => 1,
                Some(t) => t.as_u64().ok_or_else(|| Error::format(format!("step '{name}': threshold is not a non-negative integer")))?,
            };
            let pubkeys = opt_string_list(so, "pubkeys", "step")?.unwrap_or_default();
            if let Some(k) = pubkeys.iter().find(|k| !is_hex(k)) {
                return Err(Error::format(format!("step '{name}': pubkey '{k}' is not a hex keyid")));
            }
            steps.push(Step {
                expected_materials: rules(so, "expected_materials", "step")?,
                expected_products: rules(so, "expected_products", "step")?,
                expected_command: opt_string_list(so, "expected_command", "step")?.unwrap_or_default(),
                pubkeys,
                threshold,
                name,
            });
        }
        let mut inspect = Vec::new();
        for i in o.get("inspect").map(|v| v.as_array().ok_or_else(|| Error::format("layout 'inspect' is not a list"))).transpose()?.into_iter().flatten() {
            let io = obj(i, "inspection")?;
            inspect.push(Inspection {
                name: req_string(io, "name", "inspection")?,
                expected_materials: rules(io, "expected_materials", "inspection")?,
                expected_products: rules(io, "expected_products", "inspection")?,
                run: opt_string_list(io, "run", "inspection")?.unwrap_or_default(),
            });
        }
        for n in steps.iter().map(|s| &s.name).chain(inspect.iter().map(|i| &i.name)) {
            if !names.insert(n.clone()) {
                return Err(Error::format(format!("layout names '{n}' twice (step and inspection names must be unique)")));
            }
        }
        Ok(Layout { expires, readme: opt_string(o, "readme", "layout")?.unwrap_or_default(), keys, steps, inspect })
    }
}
