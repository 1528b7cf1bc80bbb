#!/usr/bin/env python3
"""Real Helm 4 (helm-python-sdk) releases against a cluster, one action per stdin line.

  helm_release.py --kubeconfig FILE --context NAME --namespace NS [--storage-driver DRIVER]

Reads JSON lines: {"op": "install"|"upgrade"|"uninstall", "chart": DIR, "name": RELEASE,
"values": {...}, "take_ownership": bool, "force_conflicts": bool, "wait": "watcher",
"timeout": SECONDS}, {"op": "rollback", "name": RELEASE, "version": N, "wait": ..., "timeout": ...},
{"op": "status"|"history", "name": RELEASE} or {"op": "list"}; answers each with one JSON line:
{"ok": true, "result": ...} or {"ok": false, "error": Helm's message}.

By default the release history lives in Helm's "memory" storage driver for the whole session
(every action goes through the same Config); --storage-driver secret keeps it where `helm`
keeps it, in release Secrets of the namespace.
"""
import argparse
import json
import sys

import helm_python as helm
from helm_python import _native


def install_or_upgrade(cfg, cmd):
    # helm-python-sdk's methods have no take_ownership or force_conflicts argument; the
    # library's options do (Helm's --take-ownership, --force-conflicts), so build the call as
    # Config.install/upgrade do.
    handle, ref = cfg._chart_args(cmd["chart"])
    opts = {"namespace": cmd.get("namespace")}
    for flag in ("take_ownership", "force_conflicts"):
        if cmd.get(flag):
            opts[flag] = True
    opts["wait"] = cmd.get("wait")
    opts["timeout_seconds"] = cmd.get("timeout")
    opts = {k: v for k, v in opts.items() if v is not None}
    payload = _native.call_string(
        "helm_" + cmd["op"],
        cfg._raw(),
        cfg._context_arg(None),
        handle,
        ref,
        cmd["name"],
        json.dumps(cmd.get("values", {})),
        json.dumps(opts) if opts else None,
    )
    return json.loads(payload)


def run(cfg, cmd):
    if cmd["op"] in ("install", "upgrade"):
        return install_or_upgrade(cfg, cmd)
    if cmd["op"] == "uninstall":
        return cfg.uninstall(cmd["name"], wait=cmd.get("wait"), timeout=cmd.get("timeout"))
    if cmd["op"] == "rollback":
        cfg.rollback(cmd["name"], version=cmd.get("version"), wait=cmd.get("wait"),
                     timeout=cmd.get("timeout"))
        return None
    if cmd["op"] == "status":
        return cfg.status(cmd["name"])
    if cmd["op"] == "history":
        return cfg.history(cmd["name"])
    if cmd["op"] == "list":
        return cfg.list(all_states=True)
    raise ValueError(f"unknown op {cmd['op']!r}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--context", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--storage-driver", default="memory")
    args = parser.parse_args()
    cfg = helm.Config(
        kubeconfig_path=args.kubeconfig,
        kube_context=args.context,
        namespace=args.namespace,
        storage_driver=args.storage_driver,
    )
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = {"ok": True, "result": run(cfg, json.loads(line))}
        except helm.HelmError as err:
            answer = {"ok": False, "error": str(err)}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
