#!/bin/sh
# error_rate.sh URL - print the error rate (a percentage) the demo app reports
# on URL/metrics, e.g. `error_rate.sh http://127.0.0.1:8080` prints 0.5.
#
# A runbook compares the number with its threshold (the procedure rolls back
# at once above 10 %). python3 does the HTTP and the JSON so that no curl or
# jq is needed. Exit status: 0 and the number on stdout; 1 if the service is
# unreachable or its answer is not the expected JSON; 2 on a usage error.

if [ $# -ne 1 ]; then
    echo "usage: error_rate.sh URL" >&2
    exit 2
fi

exec "${PYTHON:-python3}" - "$1" <<'PY'
import json, sys, urllib.request

url = sys.argv[1].rstrip("/") + "/metrics"
try:
    with urllib.request.urlopen(url, timeout=5) as resp:
        rate = json.load(resp)["error_rate"]
    print(float(rate))
except Exception as e:  # unreachable, HTTP error, bad JSON: all mean "unknown"
    print(f"error_rate.sh: cannot read the error rate from {url}: {e}", file=sys.stderr)
    sys.exit(1)
PY
