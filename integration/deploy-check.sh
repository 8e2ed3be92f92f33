#!/usr/bin/env bash
# Checks the deploy files: the Kubernetes manifests against the Kubernetes schemas (the
# kubernetes-validate package from PyPI, strict: unknown fields are errors), the ConfigMap's
# switchyard.toml and the compose stack's through `switchyard --check`, the Deployment's
# timing (terminationGracePeriodSeconds covers the preStop pause plus shutdown_timeout_ms),
# and the systemd unit with `systemd-analyze verify` where systemd is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "${SWITCHYARD_BIN:-target/release/switchyard}")"
venv="${DEPLOY_VENV:-/tmp/switchyard-deploy-venv}"
k8s_versions="${K8S_VERSIONS:-1.28.0 1.37.0}"
log() { echo "deploy-check: $*"; }

[ -x "$venv/bin/kubernetes-validate" ] || {
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q kubernetes-validate
}
for v in $k8s_versions; do
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" deploy/k8s/*.yaml
  log "deploy/k8s/*.yaml: valid for Kubernetes $v"
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$venv/bin/python" - "$tmp" <<'PY'
import sys, yaml
out = sys.argv[1]
config = yaml.safe_load(open("deploy/k8s/configmap.yaml"))["data"]["switchyard.toml"]
open(f"{out}/switchyard.toml", "w").write(config)
pod = yaml.safe_load(open("deploy/k8s/deployment.yaml"))["spec"]["template"]["spec"]
grace = pod["terminationGracePeriodSeconds"]
pause = int(pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
drain = next(int(l.split("=")[1]) for l in config.splitlines()
             if l.strip().startswith("shutdown_timeout_ms"))
if grace * 1000 < pause * 1000 + drain:
    sys.exit(f"terminationGracePeriodSeconds {grace} < preStop {pause} s + shutdown_timeout_ms {drain}")
print(f"deploy-check: grace {grace} s covers preStop {pause} s + shutdown_timeout_ms {drain}")
PY
APP_PASSWORD=check-only "$bin" --check --config "$tmp/switchyard.toml"
APP_PASSWORD=check-only "$bin" --check --config deploy/compose/switchyard.toml

if command -v systemd-analyze >/dev/null; then
  # The unit as installed, with the binary where this checkout built it.
  sed "s#/usr/local/bin/switchyard#$bin#g" deploy/systemd/switchyard.service > "$tmp/switchyard.service"
  out=$(systemd-analyze verify "$tmp/switchyard.service" 2>&1 | grep -v -e "^$" || true)
  [ -z "$out" ] || { echo "$out"; log "FAIL: systemd-analyze verify"; exit 1; }
  log "deploy/systemd/switchyard.service: systemd-analyze verify clean"
else
  log "systemd-analyze not installed: the unit was not verified"
fi
log "passed"
