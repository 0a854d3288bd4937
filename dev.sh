#!/bin/sh
# One entry point for people and CI: sets up what is missing, then runs what you ask.
#   ./dev.sh lab     the simulated lab (Ctrl-C stops it)      ./dev.sh test   the test suite
#   ./dev.sh status  the lab's devices and programs           ./dev.sh down   stop the lab
#   ./dev.sh bench   the benchmarks                           ./dev.sh shell  a shell in .venv
# First use creates .venv (again whenever setup.cfg changes) and, as root on Debian, installs the
# system libraries Qt needs offscreen and PostgreSQL's server for the archive tests.
set -eu
export TANGOLAB_DEV_SH="$0"  # how the user called this script: tangolab's messages name it
cd "$(dirname "$0")"
VENV=.venv
# Qt's xcb plugin (a real display) needs the libxcb-* ones; offscreen needs the first six; xvfb and
# x11-utils run the test of `tangolab gui` on a virtual display; chromium and its driver the web monitor's browser tests
SYSTEM_PACKAGES="libgl1 libegl1 libfontconfig1 libxkbcommon0 libdbus-1-3 libglib2.0-0 postgresql tango-test tango-starter xvfb x11-utils
 chromium chromium-driver
 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1
 libxkbcommon-x11-0 libxcb-shape0 libxcb-xfixes0"

system_packages() {
    missing=""
    for package in $SYSTEM_PACKAGES; do
        dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing Debian packages:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "note: missing Debian packages:$missing (sudo apt-get install$missing)" >&2
    fi
}

python_env() {
    if [ ! -x "$VENV/bin/pip" ]; then
        rm -rf "$VENV"
        if ! python3 -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
                echo "python3 -m venv failed; installing python3-venv" >&2
                apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
                python3 -m venv "$VENV"
            else
                echo "python3 -m venv failed: install it (sudo apt-get install python3-venv) and run again" >&2
                exit 1
            fi
        fi
    fi
    if [ ! -f "$VENV/.installed" ] || [ setup.cfg -nt "$VENV/.installed" ]; then
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -e '.[all]'
        touch "$VENV/.installed"
    fi
}

command -v dpkg >/dev/null && system_packages
python_env
case "${1:-}" in
    lab) shift; exec "$VENV/bin/tangolab" up "$@" ;;
    status|down) exec "$VENV/bin/tangolab" "$@" ;;
    test) shift; QT_QPA_PLATFORM=offscreen exec "$VENV/bin/python" -m pytest "$@" ;;
    bench) shift; for b in benchmarks/*.py; do "$VENV/bin/python" "$b" "$@"; done ;;
    shell) exec "$SHELL" -c ". $VENV/bin/activate && exec $SHELL" ;;
    *) sed -n '2,5p' "$(basename "$0")"; exit 2 ;;
esac
