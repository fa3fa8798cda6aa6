//! `transit-guard check` warnings: rules that load but can never match or
//! never take effect. The policy has already compiled (so every field is
//! valid); these read its JSON as written.
//!
//! - shadowed: an enforced rule whose conditions are a subset of this rule's
//!   (so it matches whenever this one does) and whose action wins
//!   (deny > require_approval > mask > allow);
//! - contradictory: a body condition (`body`, `openai`, `mcp`) on methods that
//!   carry no body (GET, HEAD, OPTIONS, TRACE);
//! - masks that mask nothing: a mask rule whose profiles have no detectors,
//!   custom patterns or JSON fields.
//!
//! (An empty method list and a `require_approval` rule without an
//! `approval` section are errors, refused by the loader itself.)

use serde_json::{Map, Value};

const BODILESS: &[&str] = &["GET", "HEAD", "OPTIONS", "TRACE"];

fn rank(action: &str) -> u8 {
    match action {
        "deny" => 3,
        "require_approval" => 2,
        "mask" => 1,
        _ => 0,
    }
}

/// The warnings, one line each (`rules[3] "name": why`).
pub fn warnings(policy: &Value) -> Vec<String> {
    let empty = Vec::new();
    let rules = policy
        .get("rules")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("rules[{i}] {:?}", name(rule));
        for (j, other) in rules.iter().enumerate() {
            if i == j || monitor(other) {
                continue;
            }
            if rank(action(other)) > rank(action(rule)) && broader(matcher(other), matcher(rule)) {
                out.push(format!(
                    "{at}: never takes effect: rules[{j}] {:?} ({}) matches whenever it does, and wins",
                    name(other),
                    action(other)
                ));
                break;
            }
        }
        if let Some(why) = contradiction(matcher(rule)) {
            out.push(format!("{at}: can never match: {why}"));
        }
        if action(rule) == "mask" {
            for profile in mask_profiles(rule) {
                if masks_nothing(policy, profile) {
                    out.push(format!(
                        "{at}: masking profile {profile:?} has no detectors, custom patterns or JSON fields: it masks nothing"
                    ));
                }
            }
        }
    }
    out
}

fn name(rule: &Value) -> &str {
    rule.get("name").and_then(Value::as_str).unwrap_or_default()
}

fn action(rule: &Value) -> &str {
    rule.get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn monitor(rule: &Value) -> bool {
    rule.get("mode").and_then(Value::as_str) == Some("monitor")
}

fn matcher(rule: &Value) -> Map<String, Value> {
    rule.get("match")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Whether `a`'s conditions are a subset of `b`'s, as written: then `a`
/// matches every request `b` matches. Header conditions are a list: each of
/// `a`'s must be among `b`'s. Anything else must be equal.
fn broader(a: Map<String, Value>, b: Map<String, Value>) -> bool {
    a.iter().all(|(k, va)| match (k.as_str(), b.get(k)) {
        (_, None) => false,
        ("headers", Some(Value::Array(hb))) => va
            .as_array()
            .is_some_and(|ha| ha.iter().all(|h| hb.contains(h))),
        (_, Some(vb)) => va == vb,
    })
}

fn methods(m: &Map<String, Value>) -> Vec<String> {
    match m.get("methods") {
        Some(Value::String(s)) => vec![s.to_ascii_uppercase()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_ascii_uppercase)
            .collect(),
        _ => Vec::new(),
    }
}

fn contradiction(m: Map<String, Value>) -> Option<String> {
    let body = ["body", "openai", "mcp"]
        .into_iter()
        .find(|k| m.contains_key(*k))?;
    let methods = methods(&m);
    if !methods.is_empty() && methods.iter().all(|x| BODILESS.contains(&x.as_str())) {
        return Some(format!(
            "a `{body}` condition with methods {methods:?}, which carry no body"
        ));
    }
    None
}

fn mask_profiles(rule: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    for dir in ["request", "response"] {
        match rule.pointer(&format!("/mask/{dir}")) {
            Some(Value::String(s)) => out.push(s.as_str()),
            Some(Value::Array(a)) => out.extend(a.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    out.dedup();
    out
}

fn masks_nothing(policy: &Value, profile: &str) -> bool {
    let Some(p) = policy
        .get("masking")
        .and_then(|m| m.get("profiles"))
        .and_then(|ps| ps.get(profile))
    else {
        return false;
    };
    let nonempty = |k: &str| match p.get(k) {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        _ => false,
    };
    !["detectors", "custom", "json_fields", "json_pointers"]
        .into_iter()
        .any(nonempty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_broader_winning_rule_shadows_a_narrower_one() {
        let p = json!({"rules": [
            {"name": "no-customers", "match": {"path": {"prefix": "/customers"}}, "action": "deny"},
            {"name": "mask-customers", "match": {"path": {"prefix": "/customers"}, "methods": ["GET"]},
             "action": "mask", "mask": {"response": ["pii"]}},
            {"name": "allow-all", "match": {}, "action": "allow"}
        ]});
        let w = warnings(&p);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("rules[1] \"mask-customers\": never takes effect: rules[0]"),
            "{w:?}"
        );
    }

    #[test]
    fn monitor_rules_and_weaker_rules_shadow_nothing() {
        let p = json!({"rules": [
            {"name": "watch", "mode": "monitor", "match": {}, "action": "deny"},
            {"name": "allow", "match": {}, "action": "allow"},
            {"name": "deny-x", "match": {"path": {"prefix": "/x"}}, "action": "deny"}
        ]});
        assert!(warnings(&p).is_empty());
    }

    #[test]
    fn header_conditions_compare_as_sets() {
        let h1 = json!({"name": "x-a", "present": true});
        let h2 = json!({"name": "x-b", "present": true});
        let p = json!({"rules": [
            {"name": "a", "match": {"headers": [h1]}, "action": "deny"},
            {"name": "b", "match": {"headers": [h2, h1]}, "action": "require_approval"}
        ]});
        assert_eq!(warnings(&p).len(), 1);
    }

    #[test]
    fn body_conditions_on_bodiless_methods_never_match() {
        let p = json!({"rules": [
            {"name": "get-body", "match": {"methods": ["GET", "head"], "body": {"regex": "x"}}, "action": "deny"},
            {"name": "post-body", "match": {"methods": ["GET", "POST"], "body": {"regex": "x"}}, "action": "deny"}
        ]});
        let w = warnings(&p);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("can never match"), "{w:?}");
    }

    #[test]
    fn a_profile_without_detectors_masks_nothing() {
        let p = json!({"masking": {"profiles": {"empty": {}, "pii": {"detectors": ["email"]}}},
            "rules": [{"name": "m", "match": {}, "action": "mask",
                       "mask": {"request": ["empty"], "response": ["pii"]}}]});
        let w = warnings(&p);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("\"empty\""), "{w:?}");
    }
}
