#!/usr/bin/env bash
# test-sdk-python.sh: Stripe's official Python SDK, unmodified (PyPI `stripe`, pinned
# below, with its dependencies), through a real HAProxy and payspoa against the emulated
# accounts: the flows of tests/integ/sdk-python/flows.py (the same as the Node SDK's,
# through StripeClient), within and well above the budgets; the shapes and the checks are
# in sdk-lib.sh.
#
# The SDK is installed with pip into a virtual environment, $BUILD/sdk-python (kept
# between runs; pip's cache makes a reinstall work offline).
. "$(dirname "$0")/sdk-lib.sh"

STRIPE_PYTHON_VERSION=16.1.0
SDK_DIR=$ROOT/$BUILD/sdk-python

need python3

sdk_install_lock
installed=$("$SDK_DIR/bin/python" -c 'import stripe; print(stripe.VERSION)' 2>/dev/null)
if [ "$installed" != "$STRIPE_PYTHON_VERSION" ]; then
	{ python3 -m venv "$SDK_DIR" &&
		"$SDK_DIR/bin/pip" install -q --disable-pip-version-check "stripe==$STRIPE_PYTHON_VERSION"; } \
		>"$T/pip.log" 2>&1 ||
		{ fail sdk-install "pip install stripe==$STRIPE_PYTHON_VERSION failed:" "$(tail -5 "$T/pip.log")"; exit 1; }
fi
sdk_install_unlock
pass "sdk_installed_stripe_python_$STRIPE_PYTHON_VERSION"

sdk_start_stack
SDK_RUN=("$SDK_DIR/bin/python" tests/integ/sdk-python/flows.py "$P_HTTP")
sdk_cases

integ_done
