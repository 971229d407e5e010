#!/usr/bin/env bash
# Alertmanager config (config/alertmanager/alertmanager.yml) against a real Alertmanager: every alert of the rules
# routes by its severity (critical -> page, warning -> ticket), and every inhibition rule mutes its target while its
# source fires, and nothing else.
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFIG=config/alertmanager/alertmanager.yml

for cmd in amtool prometheus-alertmanager curl jq; do
    command -v "$cmd" >/dev/null || { echo "$cmd missing (Debian: prometheus-alertmanager, curl, jq)" >&2; exit 1; }
done

fail=0

# Routing: "alert severity" pairs from the rule files.
while read -r alert severity; do
    case $severity in critical) want=page ;; *) want=ticket ;; esac
    if ! out=$(amtool config routes test --config.file="$CONFIG" --verify.receivers="$want" \
        alertname="$alert" severity="$severity" 2>&1); then
        echo "alert $alert (severity $severity) does not route to $want: $out" >&2; fail=1
    fi
done < <(awk '/^[[:space:]]*- alert:/ { a = $3 } a && /^[[:space:]]*severity:/ { print a, $2; a = "" }' \
    config/prometheus/rules/*.yml)

# Inhibition: a real Alertmanager on 127.0.0.1, fed alerts through its API.
dir=$(mktemp -d)
am_pid=
cleanup() { [ -n "$am_pid" ] && kill "$am_pid" 2>/dev/null && wait "$am_pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
for _ in 1 2 3 4 5; do
    port=$(( 20000 + RANDOM % 40000 ))
    prometheus-alertmanager --config.file="$CONFIG" --storage.path="$dir" --cluster.listen-address= \
        --web.listen-address="127.0.0.1:$port" >"$dir/log" 2>&1 &
    am_pid=$!
    for _ in $(seq 1 50); do
        curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && break 2
        kill -0 "$am_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$am_pid" 2>/dev/null; wait "$am_pid" 2>/dev/null || true; am_pid=
done
[ -n "$am_pid" ] || { echo "Alertmanager did not start:" >&2; cat "$dir/log" >&2; exit 1; }
AM=http://127.0.0.1:$port

# Each alert is a label set written as JSON.
post() { curl -sf -XPOST -H 'Content-Type: application/json' "$AM/api/v2/alerts" -d "[$1]" >/dev/null; }
# The label sets of the alerts Alertmanager mutes by inhibition right now, one a line (keys sorted).
inhibited() {
    curl -sf "$AM/api/v2/alerts?active=false&inhibited=true&silenced=false&unprocessed=false" |
        jq -cS '.[].labels' | sort
}

# Per inhibition rule: source | the target it mutes | targets it must not mute, one a line: each differs from the
# muted one in one `equal` label (none for a rule without `equal`).
cases=(
    '{"labels":{"alertname":"SyntheticCheckFailingMultiRegion","severity":"critical","endpoint":"shop","check_type":"http"}}'
    '{"labels":{"alertname":"SyntheticCheckFailing","severity":"warning","endpoint":"shop","check_type":"http","region":"eu-west-1"}}'
    '{"labels":{"alertname":"SyntheticCheckFailing","severity":"warning","endpoint":"blog","check_type":"http","region":"eu-west-1"}}'

    '{"labels":{"alertname":"SyntheticSLOFastBurn","severity":"critical","endpoint":"shop","check_type":"http"}}'
    '{"labels":{"alertname":"SyntheticSLOSlowBurn","severity":"warning","endpoint":"shop","check_type":"http"}}'
    '{"labels":{"alertname":"SyntheticSLOSlowBurn","severity":"warning","endpoint":"blog","check_type":"http"}}'

    '{"labels":{"alertname":"VantageAgentAbsent","severity":"critical","job":"vantage-agent"}}'
    '{"labels":{"alertname":"VantageAgentPushStopped","severity":"critical","region":"ap-south-1"}}'
    ''

    '{"labels":{"alertname":"VantageAgentRemoteWriteLosingSamples","severity":"warning","job":"vantage-agent","instance":"eu:9470","remote":"central"}}'
    '{"labels":{"alertname":"VantageAgentRemoteWriteStalled","severity":"warning","job":"vantage-agent","instance":"eu:9470","remote":"central"}}'
    '{"labels":{"alertname":"VantageAgentRemoteWriteStalled","severity":"warning","job":"vantage-agent","instance":"us:9470","remote":"central"}}
{"labels":{"alertname":"VantageAgentRemoteWriteStalled","severity":"warning","job":"vantage-agent","instance":"eu:9470","remote":"backup"}}'

    '{"labels":{"alertname":"VantageAgentRemoteWriteLosingSamples","severity":"warning","region":"ap-south-1","remote":"central"}}'
    '{"labels":{"alertname":"VantageAgentRemoteWriteStalled","severity":"warning","region":"ap-south-1","remote":"central"}}'
    '{"labels":{"alertname":"VantageAgentRemoteWriteStalled","severity":"warning","region":"us-east-1","remote":"central"}}'
)
n_rules=$(grep -c 'source_matchers' "$CONFIG")
covered=$(for ((i = 0; i < ${#cases[@]}; i += 3)); do echo "${cases[i]}" | jq -r .labels.alertname; done | sort -u | wc -l)
if [ "$covered" -ne "$n_rules" ]; then
    echo "$CONFIG has $n_rules inhibition rules, this test covers $covered" >&2; fail=1
fi

# Targets first: with no source firing, nothing is muted.
for ((i = 0; i < ${#cases[@]}; i += 3)); do
    post "${cases[i+1]}"
    while read -r other; do [ -z "$other" ] || post "$other"; done <<<"${cases[i+2]}"
done
sleep 1
if [ -n "$(inhibited)" ]; then echo "muted with no source firing: $(inhibited)" >&2; fail=1; fi

for ((i = 0; i < ${#cases[@]}; i += 3)); do post "${cases[i]}"; done
want=$(for ((i = 0; i < ${#cases[@]}; i += 3)); do echo "${cases[i+1]}" | jq -cS .labels; done | sort)
got=
for _ in $(seq 1 50); do
    got=$(inhibited)
    [ "$got" = "$want" ] && break
    sleep 0.1
done
if [ "$got" != "$want" ]; then
    echo "inhibited alerts differ from the expected ones" >&2
    diff <(echo "$want") <(echo "$got") >&2 || true
    fail=1
fi
[ $fail -eq 0 ] && echo "alertmanager: routes and $n_rules inhibition rules OK"
exit $fail
