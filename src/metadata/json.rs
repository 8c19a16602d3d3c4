//! Reading the metadata model out of untrusted JSON values: typed field getters that name the
//! field in their errors, and artifact maps in both directions.

use super::*;

pub(super) fn artifacts_to_value(a: &Artifacts) -> Value {
    Value::Object(
        a.iter()
            .map(|(p, h)| {
                (p.clone(), h.to_value())
            })
            .collect(),
    )
}

pub(super) fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| Error::format(format!("{what} is not a JSON object")))
}

pub(super) fn opt_string(o: &Map<String, Value>, key: &str, what: &str) -> Result<Option<String>> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::format(format!("{what} field '{key}' is not a string"))),
    }
}

pub(super) fn req_string(o: &Map<String, Value>, key: &str, what: &str) -> Result<String> {
    opt_string(o, key, what)?.ok_or_else(|| Error::format(format!("{what} has no field '{key}'")))
}

pub(super) fn string_list(v: &Value, what: &str) -> Result<Vec<String>> {
    let arr = v.as_array().ok_or_else(|| Error::format(format!("{what} is not a list")))?;
    arr.iter()
        .map(|x| x.as_str().map(str::to_string).ok_or_else(|| Error::format(format!("{what} holds a non-string"))))
        .collect()
}

pub(super) fn opt_string_list(o: &Map<String, Value>, key: &str, what: &str) -> Result<Option<Vec<String>>> {
    o.get(key).map(|v| string_list(v, &format!("{what} field '{key}'"))).transpose()
}

pub(super) fn opt_object(o: &Map<String, Value>, key: &str, what: &str) -> Result<Map<String, Value>> {
    match o.get(key) {
        None => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(Error::format(format!("{what} field '{key}' is not an object"))),
    }
}

/// A non-empty string of hex digits (any case), as in-toto's hex schema.
pub fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(super) fn opt_artifacts(o: &Map<String, Value>, key: &str) -> Result<Artifacts> {
    let Some(v) = o.get(key) else { return Ok(Artifacts::new()) };
    let m = v.as_object().ok_or_else(|| Error::format(format!("link field '{key}' is not an object")))?;
    // Collected first and built in one go: `from_iter` bulk-loads sorted input (JSON objects
    // arrive sorted) instead of searching the tree once per artifact.
    let mut out: Vec<(String, HashDict)> = Vec::with_capacity(m.len());
    for (path, hashes) in m {
        let hm = hashes
            .as_object()
            .ok_or_else(|| Error::format(format!("{key} entry '{path}' is not a hash object")))?;
        // JSON objects arrive sorted by key with unique keys.
        let mut pairs = Vec::with_capacity(hm.len());
        for (algo, digest) in hm {
            let d = digest
                .as_str()
                .filter(|d| is_hex(d))
                .ok_or_else(|| Error::format(format!("{key} entry '{path}': '{algo}' is not a hex digest")))?;
            pairs.push((algo.clone(), d.to_string()));
        }
        out.push((path.clone(), HashDict::from_sorted_pairs(pairs)));
    }
    Ok(out.into_iter().collect())
}
