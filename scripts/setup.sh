#!/usr/bin/env bash
# One command to set up a fresh machine for shuzhi; safe to re-run (fast when nothing is missing).
#   - .venv from requirements/lock.txt (the whole environment, pinned; Airflow's constraints host is
#     unreachable here, so the lock file is ours), plus this package (editable)
#   - Delta Lake jars (delta-spark_2.13 + delta-storage, matching the delta-spark wheel) fetched ONCE
#     from Maven Central into $SHUZHI_JARS (default ~/.cache/shuzhi/jars); runs never download
#   - the GX Data Docs' web assets as WebJars (Maven Central) into the same folder, for offline pages
#   - Debian's chromium and a CJK font (apt, as root) for the browser tests of the report pages
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

# the GX Data Docs' JavaScript and stylesheets as WebJars (Maven Central), so its pages render with no
# network (shuzhi.docs_offline copies them into the reports folder); the list is that module's
.venv/bin/python -m shuzhi.docs_offline --artifacts | while read -r art; do
  a=${art#*:}; v=${a#*:}; a=${a%%:*}
  if [ ! -s "$JARS/$a-$v.jar" ]; then
    say "fetching $art from Maven Central into $JARS"
    mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
        -Dartifact="$art" -DoutputDirectory="$JARS" >/dev/null
  fi
done

# Debian's chromium and a CJK font: the cockpit's and Data Docs' browser test opens the pages in it
if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk"; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's chromium and fonts-wqy-microhei (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-microhei >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-microhei >/dev/null; }
  else
    say "chromium or a CJK font is missing and this is not root with apt: install Debian's chromium and fonts-wqy-microhei, or the browser tests fail"
  fi
fi

export SHUZHI_JARS="$JARS"
say "keys, Airflow metadata DB"
.venv/bin/shuzhi setup
say "done. Run the demo with: make demo    Tests: make test"
