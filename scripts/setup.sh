#!/usr/bin/env bash
# One command to set up a fresh machine for shuzhi; safe to re-run (fast when nothing is missing).
#   - .venv from requirements/lock.txt (the whole environment, pinned; Airflow's constraints host is
#     unreachable here, so the lock file is ours), plus this package (editable)
#   - Delta Lake jars (delta-spark_2.13 + delta-storage, matching the delta-spark wheel) fetched ONCE
#     from Maven Central into $SHUZHI_JARS (default ~/.cache/shuzhi/jars); runs never download
#   - key material in $SHUZHI_KEY_DIR (default ~/.config/shuzhi/keys): outside the lake and outside git
#   - Airflow's metadata DB (SQLite under $SHUZHI_HOME/airflow) migrated
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
UV_VERSION=0.13.8
DELTA_VERSION=4.0.1
SCALA=2.13
JARS=${SHUZHI_JARS:-$HOME/.cache/shuzhi/jars}

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PY"
  "$PY" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/pip install -q "uv==$UV_VERSION"
fi
stamp=.venv/.lock.sha256
want=$(sha256sum requirements/lock.txt setup.cfg | sha256sum | cut -c1-64)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing the locked environment (requirements/lock.txt)"
  .venv/bin/uv pip sync --python .venv/bin/python requirements/lock.txt
  .venv/bin/uv pip install --python .venv/bin/python --no-deps -e .
  echo "$want" > "$stamp"
else
  say "environment up to date"
fi

mkdir -p "$JARS"
for art in "io.delta:delta-spark_${SCALA}:${DELTA_VERSION}" "io.delta:delta-storage:${DELTA_VERSION}"; do
  a=${art#*:}; a=${a%%:*}
  if [ ! -s "$JARS/$a-$DELTA_VERSION.jar" ]; then
    say "fetching $art from Maven Central into $JARS"
    mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
        -Dartifact="$art" -DoutputDirectory="$JARS" >/dev/null
  fi
done

export SHUZHI_JARS="$JARS"
say "keys, Airflow metadata DB"
.venv/bin/shuzhi setup
say "done. Run the demo with: make demo    Tests: make test"
