#!/usr/bin/env python3
"""Real Helm 4 (helm-python-sdk) releases against a cluster, one action per stdin line.

  helm_release.py --kubeconfig FILE --context NAME --namespace NS

Reads JSON lines: {"op": "install"|"upgrade"|"uninstall", "chart": DIR, "name": RELEASE,
"values": {...}, "take_ownership": bool, "force_conflicts": bool}; answers each with one JSON line: {"ok": true,
"result": ...} or {"ok": false, "error": Helm's message}.

The release history lives in Helm's "memory" storage driver for the whole session (every
action goes through the same Config): what Helm applies to the cluster is unchanged, and
nothing depends on the API server decoding the protobuf DeleteOptions that Helm's release
Secret driver sends on uninstall.
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
        return cfg.uninstall(cmd["name"])
    raise ValueError(f"unknown op {cmd['op']!r}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--context", required=True)
    parser.add_argument("--namespace", default="default")
    args = parser.parse_args()
    cfg = helm.Config(
        kubeconfig_path=args.kubeconfig,
        kube_context=args.context,
        namespace=args.namespace,
        storage_driver="memory",
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
