#!/usr/bin/env bash
# R1Sharp's TPE and random search side by side with Optuna's TPE (Debian's python3-optuna 3.1) on the
# same test functions, budget and seeds: one JSON line per function and sampler (median best value
# over the seeds, with quartiles). Usage: bench/tune-vs-optuna.sh [--budget 60] [--seeds 20]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
if ! /usr/bin/python3 -c 'import optuna' 2>/dev/null; then
  echo "installing python3-optuna" >&2
  apt-get update -q >/dev/null && apt-get install -y -q python3-optuna >/dev/null
fi
dotnet run -c Release --project "$top/src/R1Sharp.Cli" -- bench tune "$@"
/usr/bin/python3 "$top/bench/optuna_tune.py" "$@"
