# Shared by scripts/test and scripts/up: pick a Python >= 3.11, use the active virtualenv or
# .venv (created if missing), and (re)install pingan when pyproject.toml changed since the last
# install into that environment. Usage: source scripts/lib.sh; ensure_env "[test]"

pick_python() {
    local candidate
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "pingan needs Python >= 3.11; none found on PATH" >&2
    return 1
}

ensure_env() {
    local extras="${1:-}" stamp wanted
    if [[ -z "${VIRTUAL_ENV:-}" ]]; then
        if [[ ! -x .venv/bin/python ]]; then
            "$(pick_python)" -m venv .venv
            .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
        fi
        # shellcheck disable=SC1091
        source .venv/bin/activate
    fi
    stamp="$VIRTUAL_ENV/.pingan-install${extras//[^a-z]/-}"
    wanted="$(python -c 'import hashlib, pathlib, sys; print(hashlib.sha256(pathlib.Path("pyproject.toml").read_bytes()).hexdigest(), pathlib.Path.cwd(), sys.version.split()[0])')"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]] || ! python -c 'import pingan' >/dev/null 2>&1; then
        python -m pip install --disable-pip-version-check --no-input -e ".${extras}"
        echo "$wanted" >"$stamp"
    fi
}
