#!/usr/bin/env bash
# Idempotent set-up for camu-pipe: provisions a CPU libtorch 2.11.0 (what tch 0.24 expects) into a
# per-user cache shared by every clone, installs Debian's Fashion-MNIST and a font where apt is
# available, and
# writes .cargo/config.toml so a plain `cargo build` / `cargo test` finds libtorch with no exports.
#
# Environment:
#   CAMU_CACHE_HOME  where libtorch is cached (default: ${XDG_CACHE_HOME:-~/.cache}/camu-pipe)
#   LIBTORCH         use this libtorch instead (must be 2.11.0); nothing is downloaded
#   CAMU_SKIP_APT=1  do not try to install dataset-fashion-mnist
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_home="${CAMU_CACHE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/camu-pipe}"
torch_version="2.11.0"
cudart_version="13.0.96"
cupti_version="13.0.85"
dest="$cache_home/libtorch-$torch_version-cpu"

log() { printf '[setup] %s\n' "$*" >&2; }

provision_libtorch() {
  if [[ -f "$dest/.complete" ]]; then
    log "libtorch $torch_version already provisioned at $dest"
    return
  fi
  command -v python3 >/dev/null || { log "python3 with pip is required to fetch libtorch"; exit 1; }
  local work
  work="$(mktemp -d "$cache_home/.provision.XXXXXX")"
  trap 'rm -rf "$work"' RETURN
  log "downloading torch==$torch_version wheel (~530 MB) and the two CUDA runtime wheels it links"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$work/wheels" \
    "torch==$torch_version" "nvidia-cuda-runtime==$cudart_version" "nvidia-cuda-cupti==$cupti_version"
  mkdir -p "$work/unpacked" "$work/libtorch/lib"
  log "unpacking"
  for whl in "$work"/wheels/*.whl; do
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

# Debian packages: real Fashion-MNIST (tests, quickstart) and a font for the report plots.
install_packages() {
  [[ "${CAMU_SKIP_APT:-0}" == 1 ]] && return
  local want=()
  [[ -d /usr/share/datasets/fashion-mnist ]] || want+=(dataset-fashion-mnist)
  [[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || want+=(fonts-dejavu-core)
  [[ ${#want[@]} -eq 0 ]] && return
  if command -v apt-get >/dev/null; then
    local sudo=""
    [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null && sudo="sudo -n"
    log "installing Debian packages: ${want[*]}"
    if ! { $sudo apt-get install -y --no-install-recommends "${want[@]}" >/dev/null 2>&1 ||
        { $sudo apt-get update >/dev/null 2>&1 &&
          $sudo apt-get install -y --no-install-recommends "${want[@]}" >/dev/null 2>&1; }; }; then
      log "could not install ${want[*]}; Fashion-MNIST tests are skipped without the dataset, plots without the font"
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
write_cargo_config "$LIBTORCH/lib"
install_packages
log "done (LIBTORCH=$LIBTORCH)"
