//! `multi-casskop crd`: prints the MultiCasskop CustomResourceDefinition, generated from the Rust types.

use std::process::ExitCode;

use kube::CustomResourceExt;

use crate::api::MultiCasskop;

/// Arguments of `multi-casskop crd` (none).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CrdArgs {}

/// The CRD as YAML, as `kubectl apply -f -` takes it.
pub fn crd_yaml() -> anyhow::Result<String> {
    let yaml = serde_saphyr::to_string(&MultiCasskop::crd())
        .map_err(|e| anyhow::anyhow!("cannot render the MultiCasskop CRD as YAML: {e}"))?;
    Ok(yaml)
}

/// Prints the CRD on stdout.
pub fn run(_: CrdArgs) -> anyhow::Result<ExitCode> {
    print!("{}", crd_yaml()?);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_names_the_multicasskop_kind_with_status_and_printer_columns() {
        let yaml = crd_yaml().unwrap();
        let crd: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(crd["spec"]["group"], "db.orange.com");
        assert_eq!(crd["spec"]["names"]["kind"], "MultiCasskop");
        let v = &crd["spec"]["versions"][0];
        assert_eq!(v["name"], "v2");
        assert!(v["subresources"]["status"].is_object());
        let cols: Vec<&str> = v["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(cols, ["Phase", "Site", "Ready", "Age"]);
    }
}
