//! `${NAME}` substitution for the Envoy configs in `envoy/`: the same syntax
//! as `envsubst`, so users can render them without our tooling.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

/// Replaces every `${NAME}` with `vars[NAME]`; a placeholder without a value
/// is an error, never left in the output. Comment lines (`#`) are copied as
/// they are, so a config can document its own placeholders.
pub fn render(template: &str, vars: &BTreeMap<&str, String>) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    for line in template.split_inclusive('\n') {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            render_line(line, vars, &mut out)?;
        }
    }
    Ok(out)
}

fn render_line(line: &str, vars: &BTreeMap<&str, String>, out: &mut String) -> Result<()> {
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            bail!("unterminated placeholder near {:?}", &rest[start..]);
        };
        let name = &after[..end];
        match vars.get(name) {
            Some(value) => out.push_str(value),
            None => bail!("no value for placeholder ${{{name}}}"),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(())
}

/// The policy as Envoy's YAML wants it inside `value:`: one JSON string
/// literal, which is also a valid YAML double-quoted scalar.
pub fn policy_literal(policy_json: &str) -> String {
    serde_json::Value::String(policy_json.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_and_refuses_unknown() {
        let vars = BTreeMap::from([("A", "1".to_string()), ("B", "two".to_string())]);
        assert_eq!(render("x${A}y${B}${A}", &vars).unwrap(), "x1ytwo1");
        assert!(render("${C}", &vars).is_err());
        assert!(render("${A", &vars).is_err());
        assert_eq!(
            render("  # ${C}\nv: ${A}\n", &vars).unwrap(),
            "  # ${C}\nv: 1\n"
        );
    }

    #[test]
    fn policy_literal_is_quoted_json() {
        assert_eq!(policy_literal(r#"{"a":"b"}"#), r#""{\"a\":\"b\"}""#);
    }
}
