#!/usr/bin/env bash
# Make .venv from the requirements, only when they changed since the last install (a stamp file
# in the venv holds their hash). Usage: portal/scripts/venv.sh run|test|tempest|runtime
#   run:     requirements.txt (the portal and workers)
#   test:    requirements-test.txt (adds pytest, the OpenStack clients, playwright, ruff)
#   tempest: requirements-tempest.txt into its own venv (TEMPEST_VENV, default .venv-tempest):
#            tempest pins library versions that clash with the test set
#   runtime: requirements.txt ALONE into its own venv (RUNTIME_VENV, default .venv-run): what `make run`
#            installs on a fresh machine. `make test` runs the launcher and imports every runtime module
#            in it, so an import that only the test set satisfies fails the suite, not a newcomer
set -euo pipefail

profile="${1:-test}"
venv="${VENV:-.venv}"
[ "$profile" = tempest ] && venv="${TEMPEST_VENV:-.venv-tempest}"
[ "$profile" = runtime ] && venv="${RUNTIME_VENV:-.venv-run}"
python="${PYTHON:-python3}"

digest() { cat "$@" | sha256sum | cut -d' ' -f1; }
run_hash="$(digest requirements.txt)"
test_hash="$(digest requirements.txt requirements-test.txt)"
tempest_hash="$(digest requirements-tempest.txt)"
case "$profile" in
  run|runtime) want="$run_hash"; requirements=requirements.txt ;;
  test) want="$test_hash"; requirements=requirements-test.txt ;;
  tempest) want="$tempest_hash"; requirements=requirements-tempest.txt ;;
  *) echo "usage: $0 run|test|tempest|runtime" >&2; exit 2 ;;
esac

stamp_ok() { [ -f "$venv/.stamp-$1" ] && [ "$(cat "$venv/.stamp-$1")" = "$2" ]; }
if "$venv/bin/python" -c '' >/dev/null 2>&1; then
  # The test set includes the runtime set, so an up-to-date test venv serves `make run` too.
  if stamp_ok "$profile" "$want" || { [ "$profile" = run ] && stamp_ok test "$test_hash"; }; then
    exit 0
  fi
else
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "venv: $python is $("$python" --version 2>&1); Stratus needs Python 3.11 or newer" >&2
    exit 1
  fi
  echo "venv: creating $venv with $("$python" --version 2>&1)"
  "$python" -m venv --clear "$venv"
fi

echo "venv: installing $requirements into $venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$venv/bin/python" -m pip install -q -r "$requirements"
rm -f "$venv"/.stamp-*
echo "$want" >"$venv/.stamp-$profile"
if [ "$profile" = test ]; then
  echo "$run_hash" >"$venv/.stamp-run"
fi
