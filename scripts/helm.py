#!/usr/bin/env python3
"""Real Helm 4 (helm-python-sdk) for the chart tests: lint or render the chart offline.

  helm.py lint CHART_DIR
  helm.py render CHART_DIR [--set k=v ...] [--name NAME] [--namespace NS]

Prints JSON on stdout: lint -> helm's lint report; render -> {"manifests": {path: yaml}}.
A render refused by the values schema or a template exits 2 with Helm's message on stderr.
"""
import argparse
import json
import sys

import helm_python as helm


def deep_merge(into, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        else:
            into[key] = value
    return into


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["lint", "render"])
    parser.add_argument("chart")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--name", default="multi-casskop")
    parser.add_argument("--namespace", default="default")
    args = parser.parse_args()

    values = {}
    for item in args.sets:
        deep_merge(values, helm.parse_set_string(item))

    if args.command == "lint":
        print(json.dumps(helm.lint(args.chart, values, namespace=args.namespace)))
        return 0
    chart = helm.Chart.load(args.chart)
    try:
        manifests = chart.render(values, name=args.name, namespace=args.namespace, is_install=True)
    except helm.HelmError as err:
        print(str(err), file=sys.stderr)
        return 2
    print(json.dumps({"manifests": manifests}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
