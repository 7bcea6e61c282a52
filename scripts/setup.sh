#!/usr/bin/env bash
# Idempotent set-up for camu-pipe: provisions a CPU libtorch 2.11.0 (what tch 0.24 expects) and a
# Python environment with the same torch for PyTorch methods, both into a per-user cache shared by
# every clone, installs Debian's Fashion-MNIST and a font where apt is available, and writes
# .cargo/config.toml so a plain `cargo build` / `cargo test` finds libtorch (and the tests find that
# Python) with no exports.
#
# Environment:
#   CAMU_CACHE_HOME     where libtorch and the Python environment are cached
#                       (default: ${XDG_CACHE_HOME:-~/.cache}/camu-pipe)
#   LIBTORCH            use this libtorch instead (must be 2.11.0)
#   CAMU_SKIP_PYTHON=1  do not provision the Python environment (its tests are then skipped)
#   CAMU_SKIP_APT=1     do not try to install dataset-fashion-mnist
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_home="${CAMU_CACHE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/camu-pipe}"
torch_version="2.11.0"
cudart_version="13.0.96"
cupti_version="13.0.85"
dest="$cache_home/libtorch-$torch_version-cpu"
wheels="$cache_home/wheels-$torch_version"
venv="$cache_home/python-torch-$torch_version-cpu"

log() { printf '[setup] %s\n' "$*" >&2; }

# The torch wheel (~530 MB) and the two CUDA runtime wheels it links, kept for libtorch and for the
# Python environment: one download for both.
fetch_wheels() {
  [[ -f "$wheels/.complete" ]] && return
  command -v python3 >/dev/null || { log "python3 with pip is required to fetch libtorch"; exit 1; }
  log "downloading torch==$torch_version wheel (~530 MB) and the two CUDA runtime wheels it links"
  rm -rf "$wheels"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$wheels.part" \
    "torch==$torch_version" "nvidia-cuda-runtime==$cudart_version" "nvidia-cuda-cupti==$cupti_version"
  touch "$wheels.part/.complete"
  mv "$wheels.part" "$wheels"
}

# A virtual environment with the PyPI torch wheel for CPU use, without the ~5 GB of CUDA libraries
# it declares: empty stand-ins for those libraries (scripts/torch-cpu-stubs.py) let it import, and
# the real CUDA runtime reports no device. numpy and safetensors complete what python/ needs.
provision_python() {
  [[ "${CAMU_SKIP_PYTHON:-0}" == 1 ]] && return
  if [[ -f "$venv/.complete" ]]; then
    log "Python with torch $torch_version already provisioned at $venv"
    return
  fi
  fetch_wheels
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    log "python3 -m venv failed (Debian: apt install python3-venv); PyTorch-method tests will be skipped"
    rm -rf "$venv"
    return
  fi
  log "installing torch $torch_version (CPU use) into $venv"
  "$venv/bin/python" -m pip install --quiet --no-deps "$wheels"/*.whl
  # torch's own pure-Python requirements, and what the camu_pipe package needs.
  "$venv/bin/python" -m pip install --quiet --no-warn-conflicts typing_extensions sympy networkx jinja2 fsspec filelock \
    numpy safetensors
  local site
  site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  python3 "$repo/scripts/torch-cpu-stubs.py" "$site/torch/lib" "$site/torch/lib" "$site/nvidia/cu13/lib" >/dev/null
  CUDA_VISIBLE_DEVICES= "$venv/bin/python" -c 'import torch; assert not torch.cuda.is_available(); torch.ones(2) @ torch.ones(2)'
  touch "$venv/.complete"
  log "Python with torch $torch_version ready at $venv"
}

provision_libtorch() {
  if [[ -f "$dest/.complete" ]]; then
    log "libtorch $torch_version already provisioned at $dest"
    return
  fi
  local work
  work="$(mktemp -d "$cache_home/.provision.XXXXXX")"
  trap 'rm -rf "$work"' RETURN
  fetch_wheels
  mkdir -p "$work/unpacked" "$work/libtorch/lib"
  log "unpacking"
  for whl in "$wheels"/*.whl; do
    python3 - "$whl" "$work/unpacked" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    names = [n for n in z.namelist()
             if n.startswith(("torch/lib/", "torch/include/", "torch/share/", "nvidia/cu13/lib/"))]
    z.extractall(sys.argv[2], names)
PY
  done
  cp -a "$work/unpacked/torch/include" "$work/libtorch/include"
  cp -a "$work/unpacked/torch/share" "$work/libtorch/share"
  for lib in libc10.so libtorch_cpu.so libtorch.so libgomp.so.1 libshm.so libtorch_global_deps.so; do
    cp -a "$work/unpacked/torch/lib/$lib" "$work/libtorch/lib/"
  done
  cp -a "$work/unpacked/nvidia/cu13/lib/"libcudart.so.13* "$work/libtorch/lib/"
  cp -a "$work/unpacked/nvidia/cu13/lib/"libcupti.so.13* "$work/libtorch/lib/"
  echo "$torch_version" >"$work/libtorch/build-version"
  touch "$work/libtorch/.complete"
  # Rename is atomic: a killed set-up never leaves a half-provisioned libtorch behind.
  rm -rf "$dest"
  mv "$work/libtorch" "$dest"
  log "libtorch ready at $dest"
}

# Debian packages: real Fashion-MNIST (tests, quickstart), a font for the report plots, and on CI
# a browser for the report page's test.
install_packages() {
  [[ "${CAMU_SKIP_APT:-0}" == 1 ]] && return
  local want=()
  [[ -d /usr/share/datasets/fashion-mnist ]] || want+=(dataset-fashion-mnist)
  [[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || want+=(fonts-dejavu-core)
  # The report page's browser test (tests/report_html.rs); about 270 MB, so on CI only.
  [[ "${CI:-}" == true ]] && ! command -v chromium >/dev/null && want+=(chromium)
  [[ ${#want[@]} -eq 0 ]] && return
  if command -v apt-get >/dev/null; then
    local sudo=""
    [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null && sudo="sudo -n"
    log "installing Debian packages: ${want[*]}"
    if ! { $sudo apt-get install -y --no-install-recommends "${want[@]}" >/dev/null 2>&1 ||
        { $sudo apt-get update >/dev/null 2>&1 &&
          $sudo apt-get install -y --no-install-recommends "${want[@]}" >/dev/null 2>&1; }; }; then
      log "could not install ${want[*]}; Fashion-MNIST tests are skipped without the dataset, plots without the font, the browser test without chromium"
    fi
  fi
}

write_cargo_config() {
  local libdir="$1"
  mkdir -p "$repo/.cargo"
  local cfg="$repo/.cargo/config.toml" tmp
  tmp="$(mktemp "$repo/.cargo/.config.XXXXXX")"
  cat >"$tmp" <<TOML
# Written by scripts/setup.sh; not tracked. Points tch at the cached libtorch and embeds an rpath.
[env]
LIBTORCH = "$LIBTORCH"
CAMU_TEST_PYTHON = "$test_python"


[build]
rustflags = ["-C", "link-args=-Wl,-rpath,$libdir"]
TOML
  mv "$tmp" "$cfg"
}

mkdir -p "$cache_home"
if [[ -z "${LIBTORCH:-}" ]]; then
  provision_libtorch
  export LIBTORCH="$dest"
fi
provision_python
test_python=""
[[ -f "$venv/.complete" ]] && test_python="$venv/bin/python"
write_cargo_config "$LIBTORCH/lib"
install_packages
log "done (LIBTORCH=$LIBTORCH${test_python:+, Python for PyTorch methods: $test_python})"
