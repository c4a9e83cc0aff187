//! Human rendering of plans, apply results and AWS call counts, in the style of
//! Terraform's plan output.

use reconcile_core::model::Value;
use reconcile_core::plan::{Action, FieldChange, Plan, Step};
use std::collections::BTreeMap;
use std::fmt::Write;

fn symbol(a: Action) -> &'static str {
    match a {
        Action::Create => "+",
        Action::Update => "~",
        Action::Replace => "-/+",
        Action::Delete => "-",
        Action::NoOp => " ",
    }
}

fn describe(s: &Step) -> String {
    let mut d = match s.action {
        Action::Create => "create".to_string(),
        Action::Update => "update in place".to_string(),
        Action::Replace => {
            let forcing: Vec<&str> = s
                .changes
                .iter()
                .filter(|c| c.forces_replace)
                .map(|c| c.field.as_str())
                .collect();
            format!(
                "replace ({} {} replacement; {})",
                forcing.join(", "),
                if forcing.len() == 1 {
                    "forces"
                } else {
                    "force"
                },
                if s.create_before_destroy {
                    "create before delete"
                } else {
                    "delete before create"
                }
            )
        }
        Action::Delete => "delete".to_string(),
        Action::NoOp => "no change".to_string(),
    };
    if let Some(r) = &s.reason {
        d.push_str(" — ");
        d.push_str(r);
    }
    d
}

/// The plan as a person reads it: one block per changed resource, then a summary.
pub fn plan_text(plan: &Plan, observed_count: usize, seconds: f64, calls: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "stack {} ({}): {observed_count} resource{} observed in {seconds:.1} s, {calls} AWS call{}\n",
        plan.stack,
        plan.region,
        if observed_count == 1 { "" } else { "s" },
        if calls == 1 { "" } else { "s" },
    );
    for a in &plan.adoptions {
        let _ = writeln!(
            out,
            "  ! {:<32} found untracked by its tags ({}): adopted into state",
            a.address, a.observed.id
        );
    }
    // Unchanged steps with notes are shown too: a field left to another
    // resource is a choice the reader should see in every plan.
    for s in plan
        .steps
        .iter()
        .filter(|s| s.action != Action::NoOp || !s.notes.is_empty())
    {
        let sym = symbol(s.action);
        let _ = writeln!(out, "  {sym:<3} {:<32} {}", s.address, describe(s));
        for n in &s.notes {
            let _ = writeln!(out, "      # {n}");
        }
        if s.action == Action::Delete {
            if let Some(id) = &s.id {
                let _ = writeln!(out, "      id = {id:?}");
            }
            continue;
        }
        let width = s.changes.iter().map(|c| c.field.len()).max().unwrap_or(0);
        for c in &s.changes {
            render_change(&mut out, s.action, c, width);
        }
    }
    let c = plan.counts();
    if !plan.targets.is_empty() {
        let _ = writeln!(
            out,
            "Note: --target limits this plan to {} and what {} on; changes elsewhere in the stack are not shown.",
            plan.targets.join(", "),
            if plan.targets.len() == 1 { "it depends" } else { "they depend" }
        );
    }
    if !plan.has_changes() && !plan.targets.is_empty() {
        let _ = writeln!(
            out,
            "No changes to the targeted resources ({} unchanged).",
            c.unchanged
        );
    } else if !plan.has_changes() {
        let _ = writeln!(
            out,
            "No changes. AWS matches the desired state ({} unchanged).",
            c.unchanged
        );
    } else {
        let _ = writeln!(
            out,
            "\nPlan: {} to create, {} to update, {} to replace, {} to delete, {} unchanged.",
            c.create, c.update, c.replace, c.delete, c.unchanged
        );
    }
    out
}

/// One field change as the plan shows it, without indentation: one line, or
/// one per added or removed list element (`ingress - { tcp 22 from 0.0.0.0/0 }`).
pub fn change_lines(action: Action, c: &FieldChange) -> Vec<String> {
    let mut out = String::new();
    render_change(&mut out, action, c, c.field.len());
    out.lines().map(|l| l.trim().to_string()).collect()
}

fn render_change(out: &mut String, action: Action, c: &FieldChange, width: usize) {
    let name = format!("{:<width$}", c.field);
    if action == Action::Create {
        match &c.new {
            // Rules and routes: one per line, the way people read them.
            Some(Value::List(items)) if items.iter().any(|i| matches!(i, Value::Map(_))) => {
                for (i, item) in items.iter().enumerate() {
                    let label = if i == 0 {
                        name.clone()
                    } else {
                        " ".repeat(name.len())
                    };
                    let eq = if i == 0 { "=" } else { " " };
                    let _ = writeln!(out, "      {label} {eq} {}", element(item));
                }
            }
            Some(v) => {
                let _ = writeln!(out, "      {name} = {v}");
            }
            None => {}
        }
        return;
    }
    // Lists and tag maps: show what is added and removed, element by element.
    match (&c.old, &c.new) {
        (Some(Value::List(old)), Some(Value::List(new))) => {
            for o in old.iter().filter(|o| !new.contains(o)) {
                let _ = writeln!(out, "      {name}   - {}", element(o));
            }
            for n in new.iter().filter(|n| !old.contains(n)) {
                let _ = writeln!(out, "      {name}   + {}", element(n));
            }
            if old.iter().all(|o| new.contains(o)) && new.iter().all(|n| old.contains(n)) {
                let _ = writeln!(
                    out,
                    "      {name}   {} -> {}",
                    c.old.as_ref().unwrap(),
                    c.new.as_ref().unwrap()
                );
            }
        }
        (Some(Value::Map(old)), Some(Value::Map(new))) if c.field == "tags" => {
            for (k, v) in old.iter().filter(|(k, _)| !new.contains_key(*k)) {
                let _ = writeln!(out, "      {name}   - {k} = {v}");
            }
            for (k, v) in new {
                match old.get(k) {
                    None => {
                        let _ = writeln!(out, "      {name}   + {k} = {v}");
                    }
                    Some(o) if o != v => {
                        let _ = writeln!(out, "      {name}   ~ {k}: {o} -> {v}");
                    }
                    _ => {}
                }
            }
        }
        (old, new) => {
            let o = old
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "(none)".into());
            let n = new
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "(none)".into());
            let force = if c.forces_replace {
                "   # forces replacement"
            } else {
                ""
            };
            let _ = writeln!(out, "      {name} {o} -> {n}{force}");
        }
    }
}

/// Security group rules and routes read best as a compact `{ ... }`.
fn element(v: &Value) -> String {
    let Value::Map(m) = v else {
        return v.to_string();
    };
    let get = |k: &str| {
        m.get(k).map(|v| match v {
            Value::Str(s) => s.clone(),
            other => other.to_string(),
        })
    };
    if let (Some(p), Some(from), Some(to)) = (get("protocol"), get("from_port"), get("to_port")) {
        let ports = if from == to {
            from
        } else {
            format!("{from}-{to}")
        };
        let proto = if p == "-1" { "all".to_string() } else { p };
        let src = get("cidr_block")
            .or(get("source_security_group_id"))
            .unwrap_or_default();
        let note = get("description")
            .filter(|d| !d.is_empty())
            .map(|d| format!(" {d:?}"))
            .unwrap_or_default();
        return format!("{{ {proto} {ports} from {src}{note} }}");
    }
    if let Some(dest) = get("destination_cidr_block") {
        let target = get("gateway_id")
            .or(get("nat_gateway_id"))
            .unwrap_or_default();
        return format!("{{ {dest} via {target} }}");
    }
    v.to_string()
}

/// AWS calls by service and operation, for `--timings`.
pub fn calls_table(
    calls: &BTreeMap<(String, String), u64>,
    throttled: &BTreeMap<String, u64>,
) -> String {
    let mut out = String::from("AWS calls by service and operation:\n");
    let total: u64 = calls.values().sum();
    for ((svc, op), n) in calls {
        let _ = writeln!(out, "  {:<27} {:<40} {n:>5}", svc, op);
    }
    let _ = writeln!(out, "  {:<68} {total:>5}", "total");
    // Throttled answers are among the calls above; each narrowed its service.
    for (svc, n) in throttled {
        let _ = writeln!(out, "  throttled {:<58} {n:>5}", svc);
    }
    out
}
