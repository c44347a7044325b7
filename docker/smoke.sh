#!/usr/bin/env bash
# Build the image and check that it serves as the development install does.
#
#   bash docker/smoke.sh            # docker, else podman; CONTAINER_ENGINE=podman to choose
#
# Checks, against the image run with a read-only root as its non-root user:
#   - HEALTHCHECK kept in the image, user 10001, the container reports healthy;
#   - no ERROR line or traceback at start;
#   - discovery, Questionnaire reads, the sandbox and an order-sign for every synthetic scenario
#     answer byte for byte as the development service (tests/support/smoke.py), apart from ids and times;
#   - a read-only root without a writable database stops with one line naming CDS_DATABASE_URL.
# Not part of `make test`: CI machines run no container engine. Without one this script says so and
# exits 0 (nothing was checked: read the "skipped" line).
set -euo pipefail
cd "$(dirname "$0")/.."

engine="${CONTAINER_ENGINE:-}"
if [ -z "$engine" ]; then
  for candidate in docker podman; do
    if command -v "$candidate" > /dev/null && "$candidate" info > /dev/null 2>&1; then engine="$candidate"; break; fi
  done
fi
if [ -z "$engine" ]; then
  echo "docker/smoke.sh: skipped: no container engine answers (neither 'docker info' nor 'podman info' works)"
  exit 0
fi

image="spine-cds:smoke"
name="spine-cds-smoke-$$"
format=()
[ "$engine" = podman ] && format=(--format docker)   # podman's OCI format drops HEALTHCHECK
python=".venv/bin/python"
[ -x "$python" ] || make install > /dev/null

cleanup() {
  "$engine" rm -f "$name" > /dev/null 2>&1 || true
  [ -n "${dev_pid:-}" ] && kill "$dev_pid" 2> /dev/null || true
  [ -n "${dev_dir:-}" ] && rm -rf "$dev_dir"
  [ -n "${data_dir:-}" ] && rm -rf "$data_dir"
}
trap cleanup EXIT

echo "== build ($engine)"
# --no-cache: podman (buildah) reuses the install layer whatever the wheels bind-mounted into it hold,
# so a cached build can test an older tree.
"$engine" build --no-cache "${format[@]}" -f docker/Dockerfile -t "$image" .

echo "== image metadata"
health="$("$engine" image inspect --format '{{json .Config.Healthcheck}}' "$image")"
user="$("$engine" image inspect --format '{{.Config.User}}' "$image")"
[ "$health" != "null" ] && [ -n "$health" ] || { echo "FAIL: the image has no HEALTHCHECK"; exit 1; }
[ "$user" = "10001:10001" ] || { echo "FAIL: the image runs as '$user', not 10001:10001"; exit 1; }

free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {  # url
  for _ in $(seq 1 60); do
    if "$python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$1" 2> /dev/null; then return 0; fi
    sleep 1
  done
  return 1
}

echo "== read-only root without a writable database: one line"
set +e
out="$("$engine" run --rm --no-healthcheck --read-only --user 10001:10001 -e CDS_AUTH=off "$image" 2>&1)"
status=$?
set -e
lines="$(printf '%s\n' "$out" | grep -c . || true)"
if [ "$status" -eq 0 ] || [ "$lines" -ne 1 ] || ! grep -q CDS_DATABASE_URL <<< "$out"; then
  echo "FAIL: expected one line naming CDS_DATABASE_URL and a non-zero exit, got ($status):"; echo "$out"; exit 1
fi
echo "ok: $out"

echo "== serve: read-only root, non-root user, a writable data volume and /tmp only"
port="$(free_port)"
data_dir="$(mktemp -d)"; chmod 1777 "$data_dir"   # a host folder: some engines ignore a tmpfs mode
"$engine" run -d --name "$name" --read-only --user 10001:10001 \
  -v "$data_dir:/var/lib/spine-cds" --tmpfs /tmp \
  -e CDS_AUTH=off -p "127.0.0.1:$port:8080" "$image" > /dev/null
wait_for "http://127.0.0.1:$port/healthz" || { "$engine" logs "$name"; echo "FAIL: the container does not answer"; exit 1; }

dev_dir="$(mktemp -d)"
dev_port="$(free_port)"
CDS_AUTH=off CDS_VAR_DIR="$dev_dir/var" "$python" -m cds_service serve --host 127.0.0.1 --port "$dev_port" \
  > "$dev_dir/log" 2>&1 &
dev_pid=$!
wait_for "http://127.0.0.1:$dev_port/healthz" || { cat "$dev_dir/log"; echo "FAIL: the development service does not start"; exit 1; }

"$python" -m tests.support.smoke "http://127.0.0.1:$dev_port" "http://127.0.0.1:$port"

sleep 8   # gunicorn reports a control-socket failure a few seconds after boot
if "$engine" logs "$name" 2>&1 | grep -E '\bERROR\b|Traceback'; then echo "FAIL: errors in the container's log"; exit 1; fi
# The image's own HEALTHCHECK command, run now inside the container (the engine's timer would
# wait out the 30 s start period).
mapfile -t check < <("$python" -c 'import json, sys; test = json.loads(sys.argv[1])["Test"]
print("\n".join(test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]))' "$health")
"$engine" exec "$name" "${check[@]}" || { echo "FAIL: the HEALTHCHECK command fails in the running container"; exit 1; }
echo "docker/smoke.sh: passed ($engine, image $image)"
