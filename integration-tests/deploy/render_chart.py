"""Renders a Helm chart with Helm's own engine (helm-python-sdk: Helm v4's Go
SDK; Helm itself is in no package registry the project uses) and lints it.

usage: render_chart.py CHART VALUES_JSON OUT_YAML RELEASE NAMESPACE
Writes the rendered manifests (NOTES.txt left out) as one multi-document
YAML file; exits non-zero if rendering fails or `helm lint --strict` reports
an error or a warning.
"""
import json
import sys

import helm_python
from helm_python.chart import Chart

chart_dir, values_json, out, release, namespace = sys.argv[1:6]
values = json.loads(values_json)
chart = Chart.load(chart_dir)
manifests = chart.render(values, name=release, namespace=namespace, is_install=True)
docs = [text for path, text in sorted(manifests.items()) if path.endswith((".yaml", ".yml")) and text.strip()]
with open(out, "w") as f:
    f.write("\n---\n".join(docs))
report = helm_python.lint(chart_dir, values, strict=True)
problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + report.get("errors", [])
if problems:
    print(json.dumps(problems, indent=2))
    sys.exit(1)
print(f"rendered {len(docs)} templates into {out}")
