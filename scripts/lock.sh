#!/usr/bin/env bash
# Regenerate the hash-locked requirement files from pyproject.toml (needs pip-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
common=(-q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links)
# the runtime lock carries the scale-out drivers too: the image and a scale-out install use it
pip-compile "${common[@]}" --extra scaleout -o requirements/runtime.lock pyproject.toml requirements/build.in
pip-compile "${common[@]}" --extra test --extra scaleout -o requirements/test.lock pyproject.toml requirements/build.in
