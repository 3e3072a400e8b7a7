#!/usr/bin/env bash
# test-sdk-node.sh: Stripe's official Node SDK, unmodified (npm `stripe`, pinned below),
# through a real HAProxy and payspoa against the emulated accounts: the flows of
# tests/integ/sdk-node/flows.js (create + confirm, manual capture, refunds naming the
# payment and listed page by page, lists, Connect with stripeAccount, declines, and the
# idempotent retries the SDK does itself after the emulator drops a first attempt),
# within and well above the budgets; the shapes and the checks are in sdk-lib.sh.
#
# The SDK is installed with npm into $BUILD/sdk-node (kept between runs; npm's cache makes
# a reinstall work offline).
. "$(dirname "$0")/sdk-lib.sh"

STRIPE_NODE_VERSION=23.2.0
SDK_DIR=$ROOT/$BUILD/sdk-node

need node
need npm

sdk_install_lock
installed=$(node -e 'try { console.log(require(process.argv[1] + "/node_modules/stripe/package.json").version) } catch (e) {}' "$SDK_DIR")
if [ "$installed" != "$STRIPE_NODE_VERSION" ]; then
	mkdir -p "$SDK_DIR" &&
		npm install --prefix "$SDK_DIR" --prefer-offline --no-audit --no-fund --no-save \
			"stripe@$STRIPE_NODE_VERSION" >"$T/npm.log" 2>&1 ||
		{ fail sdk-install "npm install stripe@$STRIPE_NODE_VERSION failed:" "$(tail -5 "$T/npm.log")"; exit 1; }
fi
sdk_install_unlock
pass "sdk_installed_stripe_node_$STRIPE_NODE_VERSION"

sdk_start_stack
SDK_RUN=(node tests/integ/sdk-node/flows.js "$SDK_DIR" "$P_HTTP")
sdk_cases

integ_done
