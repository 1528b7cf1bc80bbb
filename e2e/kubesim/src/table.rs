//! meta.k8s.io/v1 Table rendering (PLACEHOLDER until A2's module lands).
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub json_path: String,
    pub priority: i32,
}

fn col(name: &str, type_: &str, format: &str, path: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        format: format.into(),
        description: String::new(),
        json_path: path.into(),
        priority: 0,
    }
}

pub fn default_columns(_kind: &str) -> Vec<PrinterColumn> {
    vec![
        col("Name", "string", "name", ".metadata.name"),
        col("Age", "date", "", ".metadata.creationTimestamp"),
    ]
}

fn eval(obj: &Value, path: &str) -> Value {
    let mut cur = obj;
    for seg in path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
    {
        cur = cur.get(seg).unwrap_or(&Value::Null);
    }
    cur.clone()
}

pub fn render_table(
    objects: &[Value],
    columns: &[PrinterColumn],
    list_meta: &Value,
    include_object: &str,
) -> Value {
    let defs: Vec<Value> = columns
        .iter()
        .map(|c| json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority}))
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells: Vec<Value> = columns.iter().map(|c| eval(o, &c.json_path)).collect();
            let object = match include_object {
                "None" => Value::Null,
                "Object" => o.clone(),
                _ => json!({"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata": o.get("metadata").cloned().unwrap_or(Value::Null)}),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata": list_meta, "columnDefinitions": defs, "rows": rows})
}
