#!/usr/bin/env bash
# Prometheus rules: syntax (promtool check rules), unit tests (promtool test rules), and coverage: every alert has
# at least one unit test that expects it to fire, and a runbook section in docs/runbooks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v promtool >/dev/null || { echo "promtool missing (Debian package: prometheus)" >&2; exit 1; }

promtool check rules config/prometheus/rules/*.yml
promtool check config --syntax-only config/prometheus/prometheus.yml
promtool test rules config/prometheus/tests/*_test.yml

fail=0
for alert in $(grep -hoP '^\s*- alert:\s*\K\S+' config/prometheus/rules/*.yml); do
    # An expected firing: "alertname: X" followed (before the next alertname) by a non-empty exp_alerts list.
    if ! awk -v a="$alert" '
        /alertname:/ { cur = ($2 == a) }
        cur && /exp_labels:/ { found = 1 }
        END { exit !found }' config/prometheus/tests/*_test.yml; then
        echo "alert $alert has no promtool test that expects it to fire" >&2; fail=1
    fi
    anchor=$(echo "$alert" | tr 'A-Z' 'a-z')
    if ! grep -q "runbook: 'docs/runbooks.md#$anchor'" config/prometheus/rules/*.yml; then
        echo "alert $alert has no runbook annotation docs/runbooks.md#$anchor" >&2; fail=1
    fi
    if ! grep -qx "## $alert" docs/runbooks.md; then
        echo "alert $alert has no section '## $alert' in docs/runbooks.md" >&2; fail=1
    fi
done
if command -v amtool >/dev/null; then amtool check-config config/alertmanager/alertmanager.yml; fi
exit $fail
