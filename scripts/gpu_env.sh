# Sourced by scripts/gpu_check.sh. A lent GPU machine has the CUDA toolkit, CMake and most of
# the build's libraries, but may lack some Debian -dev packages and cannot reach a registry.
# Packages fetched beforehand by scripts/fetch_device_debs.sh (carried in .devdebs/) are
# unpacked into a private prefix, never into /, and put first on CMake's search paths.
AUTOGLM_DEVROOT=${AUTOGLM_DEVROOT:-/opt/autoglm-devroot}
if compgen -G ".devdebs/*.deb" >/dev/null; then
  mkdir -p "$AUTOGLM_DEVROOT"
  for deb in .devdebs/*.deb; do dpkg -x "$deb" "$AUTOGLM_DEVROOT"; done
  devlib="$AUTOGLM_DEVROOT/usr/lib/x86_64-linux-gnu"
  # -dev symlinks whose targets live in runtime packages the machine already has.
  for link in "$devlib"/*.so; do
    if [ -L "$link" ] && [ ! -e "$link" ]; then
      target=$(readlink "$link")
      [ -e "/usr/lib/x86_64-linux-gnu/$target" ] && ln -sf "/usr/lib/x86_64-linux-gnu/$target" "$link"
    fi
  done
  # Some .pc files (hiredis's) spell /usr out in includedir/libdir instead of using ${prefix}.
  sed -i -e "s#^prefix=/usr\$#prefix=$AUTOGLM_DEVROOT/usr#" \
    -e "s#^\(includedir\|libdir\)=/usr/#\1=$AUTOGLM_DEVROOT/usr/#" "$devlib"/pkgconfig/*.pc
  export CMAKE_PREFIX_PATH="$AUTOGLM_DEVROOT/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export PKG_CONFIG_PATH="$devlib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export OPENSSL_ROOT_DIR="$AUTOGLM_DEVROOT/usr"
  export LD_LIBRARY_PATH="$devlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "gpu_env: unpacked $(ls .devdebs/*.deb | wc -l) Debian packages into $AUTOGLM_DEVROOT"
fi
export PATH="/usr/local/cuda/bin:$PATH"
