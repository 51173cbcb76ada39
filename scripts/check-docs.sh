#!/usr/bin/env bash
# Checks that the documentation stays inside the repository and points at files that exist:
#   1. every relative Markdown link ([text](path)) in a .md file names an existing file or
#      directory (relative to the .md file; a #fragment is ignored; http(s)/mailto skipped);
#   2. every repository path quoted in backticks in a .md file (`api/src/lib.rs`, `docs/`)
#      exists, unless it holds a placeholder (<…>, *, {…}) or git ignores it (build output);
#   3. no tracked text file (code comments, READMEs, scripts, configs) points outside the
#      repository: no absolute /work/ paths, no ../shared/ (the specifications' old home
#      beside the checkout), no bare DESIGN.md / QUALITY.md / API.md (they live in docs/).
# Usage: scripts/check-docs.sh [--check] [ROOT]  (default: this checkout)
#        scripts/check-docs.sh --self-test       (proves each rule fails on a broken fixture)
# Prints one line per problem and "doc links: N problems"; exits 1 if there is any.
# shellcheck disable=SC2016 # backquotes in single quotes are Markdown code spans here
set -uo pipefail

self=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)/$(basename -- "${BASH_SOURCE[0]}")

# The files to check: tracked and new (not ignored) ones in a git checkout, else every file
# outside target/, node_modules/ and test-assets/.
list_files() {
    local root=$1
    if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$root" ls-files --cached --others --exclude-standard
    else
        (cd "$root" && find . -type f -not -path './target/*' -not -path '*/node_modules/*' \
            -not -path './test-assets/*' -not -path './.git/*' | sed 's#^\./##')
    fi
}

check() {
    local root=$1 problems=0 file dir link target token
    mapfile -t files < <(list_files "$root" | sort -u)
    for file in "${files[@]}"; do
        [[ -f "$root/$file" ]] || continue
        case "$file" in
            *.md)
                dir=$(dirname -- "$file")
                # 1. Markdown links.
                while IFS= read -r link; do
                    target=${link%%#*}
                    [[ -z "$target" ]] && continue
                    case "$target" in
                        http://* | https://* | mailto:*) continue ;;
                        /*)
                            echo "$file: link to an absolute path: $link"
                            problems=$((problems + 1))
                            continue
                            ;;
                    esac
                    if ! resolved=$(realpath -m -- "$root/$dir/$target") ||
                        [[ "$resolved" != "$(realpath -m -- "$root")"* ]]; then
                        echo "$file: link leaves the repository: $link"
                        problems=$((problems + 1))
                    elif [[ ! -e "$resolved" ]]; then
                        echo "$file: link to a missing file: $link"
                        problems=$((problems + 1))
                    fi
                done < <(grep -oE '\]\([^) ]+\)' "$root/$file" | sed -E 's/^\]\((.*)\)$/\1/')
                # 2. Repository paths in backticks.
                while IFS= read -r token; do
                    [[ "$token" =~ [\<\>\*\{\}] ]] && continue
                    # Build and test outputs (ignored by git) need not exist in a checkout.
                    git -C "$root" check-ignore -q -- "$token" 2>/dev/null && continue
                    if [[ ! -e "$root/$token" ]]; then
                        echo "$file: \`$token\` does not exist"
                        problems=$((problems + 1))
                    fi
                done < <(grep -oE '`(api|worker|shared|mastering|migrations|web|e2e|deploy|ops|scripts|docs|\.ci|\.cargo)/[^` ]*`' "$root/$file" | tr -d '`')
                ;;
        esac
        # 3. Pointers outside the repository, in every text file but this script.
        [[ "$root/$file" -ef "$self" ]] && continue
        grep -Iq . "$root/$file" 2>/dev/null || continue
        while IFS= read -r hit; do
            echo "$file:$hit"
            problems=$((problems + 1))
        done < <(grep -nE '/work/|\.\./shared/|(^|[^A-Za-z0-9_/.-])(DESIGN|QUALITY|API)\.md' "$root/$file" |
            grep -vE '(^|[^A-Za-z0-9_/.-])docs/(QUALITY|API)\.md|^[0-9]+:.*\]\((QUALITY|API)\.md' |
            sed -E 's/^([0-9]+):(.*)$/\1: points outside the repository: \2/' | cut -c1-220)
    done
    echo "doc links: $problems problems"
    ((problems == 0))
}

# Each rule must fail on a fixture that breaks it, and a clean fixture must pass.
self_test() {
    local work status=0 case
    work=$(mktemp -d)
    trap 'rm -rf -- "$work"' RETURN
    make_fixture() {
        rm -rf -- "$work/repo"
        mkdir -p "$work/repo/docs" "$work/repo/api/src"
        printf '# API\n' >"$work/repo/docs/API.md"
        printf '//! See docs/API.md.\n' >"$work/repo/api/src/lib.rs"
        printf 'See [the API](docs/API.md#errors), `api/src/lib.rs` and `api/tests/<area>.rs`.\n' \
            >"$work/repo/README.md"
    }
    make_fixture
    if ! check "$work/repo" >"$work/out"; then
        echo "self-test: the clean fixture fails:"; cat "$work/out"; status=1
    fi
    for case in 'README.md:[gone](docs/GONE.md)' 'README.md:[up](../outside.md)' \
        'README.md:see `api/src/gone.rs`' 'api/src/lib.rs://! spec: ../shared/QUALITY.md' \
        'api/src/lib.rs://! /work/shared/QUALITY.md section 3' 'api/src/lib.rs://! (see DESIGN.md)' \
        'docs/API.md:[x](/etc/passwd)'; do
        make_fixture
        printf '%s\n' "${case#*:}" >>"$work/repo/${case%%:*}"
        if check "$work/repo" >"$work/out"; then
            echo "self-test: not caught: ${case#*:} (in ${case%%:*})"; status=1
        fi
    done
    ((status == 0)) && echo "self-test: every rule catches its broken fixture"
    return "$status"
}

if [[ "${1:-}" == "--self-test" ]]; then
    self_test
else
    [[ "${1:-}" == "--check" ]] && shift
    check "$(cd -- "${1:-$(dirname -- "$self")/..}" && pwd)"
fi
