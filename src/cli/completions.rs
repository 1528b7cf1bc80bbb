//! Shell completion: `completions bash|zsh|fish` scripts, and the answers kubectl asks a plugin
//! for (`kubectl_complete-multicasskop WORDS...`, also `__complete WORDS...`) in cobra's format.

use std::io::Write;
use std::process::ExitCode;

use clap::{Arg, Command};

use super::invocation::{Invocation, PLUGIN_COMPLETION_FILE, PLUGIN_FILE, PROGRAM};

/// What `completions` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    /// A bash script: `source` it, or save it in bash-completion's directory.
    Bash,
    /// A zsh script (`#compdef`): put it in a directory of `$fpath` as `_multi-casskop`.
    Zsh,
    /// A fish script: put it in `~/.config/fish/completions/multi-casskop.fish`.
    Fish,
    /// The `kubectl_complete-multicasskop` script kubectl 1.26+ runs to complete
    /// `kubectl multicasskop <TAB>` (a link named so to this binary does the same).
    KubectlPlugin,
}

const EXAMPLE: &str = "\
Examples:
  # bash, this shell; or save it under ~/.local/share/bash-completion/completions/multi-casskop
  source <(multi-casskop completions bash)
  # zsh: a file _multi-casskop in a directory of $fpath, before compinit
  multi-casskop completions zsh > \"${fpath[1]}/_multi-casskop\"
  # fish
  multi-casskop completions fish > ~/.config/fish/completions/multi-casskop.fish
  # kubectl multicasskop <TAB> (kubectl 1.26+ completes plugins through this executable)
  ln -s \"$(command -v multi-casskop)\" \"$(dirname \"$(command -v multi-casskop)\")/kubectl_complete-multicasskop\"";

/// Arguments of `completions`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    about = "Print a shell completion script (bash, zsh, fish, or kubectl's plugin completion helper)",
    after_help = EXAMPLE
)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Arguments of `__complete`, cobra's entry point that plugin completion scripts call.
#[derive(clap::Args, Debug, Clone)]
pub struct CompleteArgs {
    /// The words after the plugin name; the last one is being completed (may be empty).
    #[arg(allow_hyphen_values = true, trailing_var_arg = true, num_args = 0..)]
    pub words: Vec<String>,
}

/// `completions SHELL`: the script on stdout. Scripts complete the name the user types the
/// command by: `multi-casskop`, or the plugin file `kubectl-multicasskop` when run as it.
pub fn run(args: &CompletionsArgs, cmd: &mut Command, invocation: &Invocation) -> ExitCode {
    let bin = match invocation {
        Invocation::Standalone => PROGRAM,
        _ => PLUGIN_FILE,
    };
    let mut out = std::io::stdout().lock();
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
        Shell::KubectlPlugin => {
            let _ = write!(out, "{}", kubectl_plugin_script());
            return ExitCode::SUCCESS;
        }
    };
    // The generated scripts name the binary they complete: standalone help must not leak the
    // plugin's two-word name into a shell function name.
    let mut cmd = cmd.clone().bin_name(bin).display_name(bin);
    clap_complete::generate(shell, &mut cmd, bin, &mut out);
    ExitCode::SUCCESS
}

/// The `kubectl_complete-multicasskop` executable: it asks the plugin itself, through kubectl's
/// discovery, as cobra plugins' scripts do.
pub fn kubectl_plugin_script() -> String {
    format!(
        "#!/bin/sh\n# {PLUGIN_COMPLETION_FILE}: kubectl (1.26+) runs this to complete `kubectl multicasskop <TAB>`.\n\
         # Install it executable on PATH, next to {PLUGIN_FILE}.\nexec {PLUGIN_FILE} __complete \"$@\"\n"
    )
}

/// cobra's `ShellCompDirective` bits, which kubectl's completion scripts read.
mod directive {
    /// Complete file names too.
    pub const DEFAULT: u8 = 0;
    /// No file names: the candidates are all there is.
    pub const NO_FILE_COMP: u8 = 4;
}

/// The answer to a completion request: candidates with their description, and a directive.
#[derive(Debug, PartialEq, Eq)]
pub struct Candidates {
    pub items: Vec<(String, Option<String>)>,
    pub directive: u8,
}

impl Candidates {
    /// cobra's `__complete` output: `candidate\tdescription` lines, then `:directive`.
    pub fn to_cobra(&self) -> String {
        let mut out = String::new();
        for (value, help) in &self.items {
            out.push_str(value);
            if let Some(h) = help.as_deref().filter(|h| !h.is_empty()) {
                out.push('\t');
                out.push_str(h.lines().next().unwrap_or_default());
            }
            out.push('\n');
        }
        out.push_str(&format!(":{}\n", self.directive));
        out
    }
}

/// Answers kubectl's completion request for `words` (the last one is being completed) on stdout.
pub fn answer(cmd: &mut Command, words: &[String]) -> ExitCode {
    cmd.build();
    let _ = std::io::stdout().write_all(complete(cmd, words).to_cobra().as_bytes());
    ExitCode::SUCCESS
}

/// The candidates for the last of `words` in the built command `root`: subcommands, flags, a
/// flag's values, or kubeconfig contexts for `--context`, `-l` and `-r`.
pub fn complete(root: &Command, words: &[String]) -> Candidates {
    let (current, before) = match words.split_last() {
        Some((c, b)) => (c.as_str(), b),
        None => ("", &[][..]),
    };
    let mut cmd = root;
    let mut value_of: Option<&Arg> = None;
    for w in before {
        if value_of.take().is_some() {
            continue;
        }
        if let Some(long) = w.strip_prefix("--") {
            let (name, inline) = long
                .split_once('=')
                .map_or((long, false), |(n, _)| (n, true));
            value_of = find_long(cmd, name).filter(|a| takes_value(a) && !inline);
        } else if let Some(shorts) = w.strip_prefix('-').filter(|s| !s.is_empty()) {
            let first = shorts.chars().next().unwrap_or_default();
            value_of = cmd
                .get_arguments()
                .find(|a| a.get_short() == Some(first))
                .filter(|a| takes_value(a) && shorts.chars().count() == 1);
        } else if let Some(sub) = cmd.find_subcommand(w) {
            cmd = sub;
        }
    }
    let keep = |v: &str| v.starts_with(current);
    if let Some(arg) = value_of {
        return values_of(arg, current);
    }
    if current.starts_with('-') {
        let items = cmd
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !a.is_positional())
            .filter_map(|a| Some((format!("--{}", a.get_long()?), help_of(a))))
            .filter(|(v, _)| keep(v))
            .collect();
        return Candidates {
            items,
            directive: directive::NO_FILE_COMP,
        };
    }
    let subs: Vec<(String, Option<String>)> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && keep(s.get_name()))
        .map(|s| {
            (
                s.get_name().to_string(),
                s.get_about().map(ToString::to_string),
            )
        })
        .collect();
    if cmd.has_subcommands() {
        return Candidates {
            items: subs,
            directive: directive::NO_FILE_COMP,
        };
    }
    match cmd.get_positionals().next() {
        Some(p) => values_of(p, current),
        None => Candidates {
            items: vec![],
            directive: directive::NO_FILE_COMP,
        },
    }
}

fn find_long<'a>(cmd: &'a Command, name: &str) -> Option<&'a Arg> {
    cmd.get_arguments().find(|a| a.get_long() == Some(name))
}

fn takes_value(a: &Arg) -> bool {
    a.get_num_args().is_some_and(|n| n.takes_values())
}

fn help_of(a: &Arg) -> Option<String> {
    a.get_help().map(ToString::to_string)
}

/// Values for `arg`: its possible values, kubeconfig contexts for the flags naming sites or
/// contexts, file names for paths, else nothing (free text such as a MultiCasskop name).
fn values_of(arg: &Arg, current: &str) -> Candidates {
    let keep = |v: &str| v.starts_with(current);
    let possible = arg.get_possible_values();
    if !possible.is_empty() {
        return Candidates {
            items: possible
                .iter()
                .filter(|p| !p.is_hide_set() && keep(p.get_name()))
                .map(|p| {
                    (
                        p.get_name().to_string(),
                        p.get_help().map(ToString::to_string),
                    )
                })
                .collect(),
            directive: directive::NO_FILE_COMP,
        };
    }
    let id = arg.get_id().as_str();
    if matches!(id, "context" | "local" | "remotes") || id.ends_with("_context") {
        return Candidates {
            items: crate::sites::credentials::local_context_names(None)
                .into_iter()
                .filter(|c| keep(c))
                .map(|c| (c, None))
                .collect(),
            directive: directive::NO_FILE_COMP,
        };
    }
    let path = matches!(
        arg.get_value_hint(),
        clap::ValueHint::FilePath | clap::ValueHint::DirPath | clap::ValueHint::AnyPath
    ) || arg
        .get_value_names()
        .is_some_and(|n| n.iter().any(|n| n == "FILE" || n == "DIR"));
    Candidates {
        items: vec![],
        directive: if path {
            directive::DEFAULT
        } else {
            directive::NO_FILE_COMP
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> Command {
        let mut c = Command::new("t")
            .arg(Arg::new("context").long("context").num_args(1))
            .subcommand(
                Command::new("status")
                    .about("Show a MultiCasskop")
                    .arg(Arg::new("name").required(true))
                    .arg(
                        Arg::new("output")
                            .short('o')
                            .long("output")
                            .value_parser(["table", "json"]),
                    )
                    .arg(Arg::new("watch").short('w').long("watch").num_args(0)),
            )
            .subcommand(Command::new("ring").about("Check the ring"))
            .subcommand(Command::new("__complete").hide(true));
        c.build();
        c
    }

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn completes_subcommands_flags_and_flag_values_in_cobras_format() {
        let c = cli();
        let subs = complete(&c, &words(&[""]));
        assert_eq!(
            subs.to_cobra(),
            "status\tShow a MultiCasskop\nring\tCheck the ring\n\
             help\tPrint this message or the help of the given subcommand(s)\n:4\n"
        );
        assert_eq!(complete(&c, &words(&["st"])).items.len(), 1);
        let flags = complete(&c, &words(&["status", "x", "--o"]));
        assert_eq!(flags.items[0].0, "--output");
        let values = complete(&c, &words(&["status", "x", "-o", "j"]));
        assert_eq!(values.to_cobra(), "json\n:4\n");
        let after_flag = complete(&c, &words(&["status", "-w", "x", "--output", ""]));
        assert_eq!(after_flag.items.len(), 2);
        let name = complete(&c, &words(&["status", ""]));
        assert!(name.items.is_empty(), "{name:?}");
        assert_eq!(name.directive, directive::NO_FILE_COMP);
    }
}
