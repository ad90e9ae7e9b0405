# Sourced by build.sh and test.sh: which LibTorch a build uses, and where it is built.
#   debian  Debian's LibTorch 1.13 (python3-torch), into build/            (the default)
#   wheel   the PyPI wheel's LibTorch 2.x in .venv/ (scripts/python-env.sh), into build-torch2/
# Reads $libtorch; sets $build_dir and $cmake_prefix (cmake arguments, an array).
case "${libtorch:-debian}" in
  debian) build_dir=build; cmake_prefix=() ;;
  wheel)
    build_dir=build-torch2
    [ -x .venv/bin/python ] || { echo "--libtorch wheel needs .venv (scripts/python-env.sh)" >&2; exit 2; }
    cmake_prefix=(-DCMAKE_PREFIX_PATH="$(.venv/bin/python -c 'import torch; print(torch.utils.cmake_prefix_path)')") ;;
  *) echo "--libtorch must be debian or wheel, not '$libtorch'" >&2; exit 2 ;;
esac
