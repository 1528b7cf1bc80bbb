//! The name the binary was called by (`multi-casskop`, the kubectl plugin `kubectl-multicasskop`,
//! kubectl's completion helper `kubectl_complete-multicasskop`) and the command line shaped for it.
//!
//! kubectl finds a plugin as an executable `kubectl-NAME` on `PATH` (a `-` in the file name is a
//! space on the command line, a `_` a `-`: `kubectl-foo_bar` is `kubectl foo-bar`), runs it with
//! every argument after the plugin name unchanged (`--kubeconfig`, `--context`, `-n` included: it
//! refuses flags placed before the name) and with its own environment (`KUBECONFIG` among it).
//! For `kubectl NAME <TAB>` (kubectl 1.26+), it runs `kubectl_complete-NAME` with the words after
//! the plugin name, the last one being the word to complete, and reads cobra's `__complete` answer.

use std::ffi::OsStr;
use std::path::Path;

/// The one name of this program as a standalone binary.
pub const PROGRAM: &str = "multi-casskop";
/// The file name kubectl looks for to run `kubectl multicasskop`.
pub const PLUGIN_FILE: &str = "kubectl-multicasskop";
/// The file name kubectl looks for to complete `kubectl multicasskop <TAB>`.
pub const PLUGIN_COMPLETION_FILE: &str = "kubectl_complete-multicasskop";

/// How the program was started, from the file name of `argv[0]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// As `multi-casskop` (or any other name): the controller by default, the chart's way.
    Standalone,
    /// As a kubectl plugin `kubectl-NAME`; `words` is how the user types it (`kubectl NAME`).
    Plugin { words: String },
    /// As kubectl's completion helper `kubectl_complete-NAME` for the plugin `kubectl NAME`.
    PluginCompletion { words: String },
}

impl Invocation {
    /// The invocation `argv0` (a path or a bare name) stands for.
    pub fn from_argv0(argv0: Option<&OsStr>) -> Self {
        let file = argv0
            .and_then(|a| Path::new(a).file_stem())
            .and_then(OsStr::to_str)
            .unwrap_or(PROGRAM);
        if let Some(plugin) = file.strip_prefix("kubectl_complete-") {
            return Self::PluginCompletion {
                words: plugin_words(plugin),
            };
        }
        match file.strip_prefix("kubectl-") {
            Some(plugin) if !plugin.is_empty() => Self::Plugin {
                words: plugin_words(plugin),
            },
            _ => Self::Standalone,
        }
    }

    /// The command as the user types it: `multi-casskop` or `kubectl multicasskop`.
    pub fn display_name(&self) -> String {
        match self {
            Self::Standalone => PROGRAM.to_string(),
            Self::Plugin { words } | Self::PluginCompletion { words } => words.clone(),
        }
    }

    /// Whether help and behaviour follow the kubectl plugin's conventions.
    pub fn is_plugin(&self) -> bool {
        !matches!(self, Self::Standalone)
    }

    /// The clap command shaped for this invocation: usage, help and examples under the name the
    /// user typed; as a plugin, a subcommand is required (`kubectl multicasskop` alone prints
    /// the help) and the controller's flags are only under `run`, listed last.
    pub fn shape(&self, cmd: clap::Command) -> clap::Command {
        let name = self.display_name();
        let mut cmd = rename_examples(cmd.bin_name(&name).display_name(&name), &name);
        if self.is_plugin() {
            let root_args: Vec<clap::Id> = cmd
                .get_arguments()
                .filter(|a| !a.is_positional())
                .map(|a| a.get_id().clone())
                .collect();
            for id in root_args {
                cmd = cmd.mut_arg(id, |a| a.hide(true));
            }
            cmd = cmd
                .subcommand_required(true)
                .override_usage(format!("{name} <COMMAND> [OPTIONS]"))
                .about(PLUGIN_ABOUT)
                .long_about(PLUGIN_LONG_ABOUT)
                .mut_subcommands(|sub| {
                    // What a kubectl user comes for first: the federation's state.
                    let rank = PLUGIN_ORDER
                        .iter()
                        .position(|n| *n == sub.get_name())
                        .unwrap_or(PLUGIN_ORDER.len());
                    sub.display_order(rank)
                })
                .mut_subcommand("run", |run| {
                    run.display_order(usize::MAX).about(
                        "Run the controller (the Helm chart's Deployment runs it; rarely by hand)",
                    )
                });
        }
        cmd
    }
}

/// The plugin's commands in the order its help lists them (the controller, `run`, last).
const PLUGIN_ORDER: [&str; 7] = [
    "status",
    "ring",
    "register",
    "check",
    "export",
    "crd",
    "completions",
];

const PLUGIN_ABOUT: &str =
    "Inspect and operate a Multi-CassKop federation: status, ring, register, check";
const PLUGIN_LONG_ABOUT: &str = "\
Inspect and operate a Multi-CassKop federation: status, ring, register, check.

Flags as kubectl's, after the command: --kubeconfig (default $KUBECONFIG, then ~/.kube/config),
--context, -n/--namespace. The controller itself runs in the control-plane cluster (Helm chart);
`run` starts one by hand.";

/// `foo_bar-baz` (after `kubectl-`) is typed `kubectl foo-bar baz`.
fn plugin_words(plugin: &str) -> String {
    let words: Vec<String> = plugin.split('-').map(|w| w.replace('_', "-")).collect();
    format!("kubectl {}", words.join(" "))
}

/// Rewrites `multi-casskop SUBCOMMAND` in every help text of `cmd` and its subcommands to `name
/// SUBCOMMAND`, so examples can be pasted as shown. Only the program followed by a subcommand is
/// rewritten: `multi-casskop` also names a service account and a Helm release in the examples.
fn rename_examples(cmd: clap::Command, name: &str) -> clap::Command {
    if name == PROGRAM {
        return cmd;
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let fix = |text: String| {
        subs.iter().fold(text, |t, s| {
            t.replace(&format!("{PROGRAM} {s} "), &format!("{name} {s} "))
                .replace(&format!("{PROGRAM} {s}\n"), &format!("{name} {s}\n"))
        })
    };
    let texts = |c: &clap::Command| {
        (
            c.get_about().map(ToString::to_string),
            c.get_long_about().map(ToString::to_string),
            c.get_after_help().map(ToString::to_string),
            c.get_after_long_help().map(ToString::to_string),
        )
    };
    let mut cmd = cmd;
    for sub in subs.clone() {
        cmd = cmd.mut_subcommand(&sub, |c| {
            let (about, long_about, after, after_long) = texts(&c);
            let mut c = c;
            if let Some(t) = about {
                c = c.about(fix(t));
            }
            if let Some(t) = long_about {
                c = c.long_about(fix(t));
            }
            if let Some(t) = after {
                c = c.after_help(fix(t));
            }
            if let Some(t) = after_long {
                c = c.after_long_help(fix(t));
            }
            c
        });
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_name_says_how_the_program_was_called() {
        let of = |s: &str| Invocation::from_argv0(Some(OsStr::new(s)));
        assert_eq!(of("/usr/local/bin/multi-casskop"), Invocation::Standalone);
        assert_eq!(of("multi-casskop.exe"), Invocation::Standalone);
        assert_eq!(Invocation::from_argv0(None), Invocation::Standalone);
        assert_eq!(
            of("/home/u/.krew/bin/kubectl-multicasskop").display_name(),
            "kubectl multicasskop"
        );
        assert_eq!(
            of("kubectl-multi_casskop").display_name(),
            "kubectl multi-casskop"
        );
        assert_eq!(of("kubectl-cass-fed").display_name(), "kubectl cass fed");
        assert_eq!(
            of("kubectl_complete-multicasskop"),
            Invocation::PluginCompletion {
                words: "kubectl multicasskop".into()
            }
        );
        assert_eq!(of("kubectl-"), Invocation::Standalone);
    }
}
