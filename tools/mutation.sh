#!/bin/sh
# Mutation testing of catalogue.py, limits.py, discovery.py and sampler.py with mutmut 3
# (configured in pyproject.toml, [tool.mutmut]); prints the survivors per module.
#
# mutmut runs the tests against copies under mutants/src, which must win the import of
# pycgroup: run it from a virtual environment in which pycgroup is NOT installed (an
# editable install's import hook would load the unmutated sources), with the test
# dependencies available, e.g.
#   python -m venv --system-site-packages /tmp/mutmut-env && /tmp/mutmut-env/bin/pip install mutmut
#   MUTMUT=/tmp/mutmut-env/bin/mutmut tools/mutation.sh
# The compiled core is taken from the build in another environment (PYCGROUP_NATIVE, a
# _native*.so) and copied beside the sources, where .gitignore keeps it out of git.
# A full run takes about 20 minutes on two cores.
set -eu
cd "$(dirname "$0")/.."
MUTMUT=${MUTMUT:-mutmut}
if [ -n "${PYCGROUP_NATIVE:-}" ]; then
    cp "$PYCGROUP_NATIVE" src/pycgroup/
fi
ls src/pycgroup/_native*.so >/dev/null 2>&1 || {
    echo "no src/pycgroup/_native*.so: set PYCGROUP_NATIVE to a built one" >&2; exit 2; }
rm -rf mutants
PYCGROUP_SKIP_VM=1 "$MUTMUT" run >/dev/null 2>&1 || true
"$MUTMUT" results --all true >mutants/results.txt 2>&1
for module in catalogue limits discovery sampler; do
    printf '%-10s' "$module"
    grep "pycgroup\.$module\." mutants/results.txt | awk '{print $NF}' | sort | uniq -c |
        awk '{printf " %s %s", $2, $1} END {print ""}'
done
echo "survivors: $MUTMUT results; one mutant's diff: $MUTMUT show <name>"
