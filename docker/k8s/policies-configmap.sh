#!/bin/sh
# Print the ConfigMap `fairpath-policies` for a policy directory (default: the repository's).
#
#   docker/k8s/policies-configmap.sh [POLICIES_DIR] | kubectl apply -n fairpath -f -
#
# ConfigMap keys cannot contain "/", so <name>/<version>.yaml becomes the key
# <name>--<version>.yaml (and its cases <name>--<version>.tests.yaml, kept beside it):
# fairpath reads a policy's name and version from the file, not from its path, and pairs
# each policy with the .tests.yaml of the same stem. policies.lock is included as is.
# Applying a changed ConfigMap updates the mounted files in place; the running replicas'
# hot reload picks the change up (FAIRPATH_WATCH_SECONDS) without a restart.
set -eu
dir=${1:-"$(dirname "$0")/../../policies"}
[ -f "$dir/policies.lock" ] || { echo "no policies.lock in $dir" >&2; exit 2; }
files=$(cd "$dir" && ls policies.lock */*.yaml)
set --
for rel in $files; do
    set -- "$@" "--from-file=$(printf %s "$rel" | sed 's|/|--|')=$dir/$rel"
done
exec kubectl create configmap fairpath-policies "$@" --dry-run=client --output=yaml
