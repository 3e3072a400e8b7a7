// flows.js: payment flows through Stripe's own Node SDK (unmodified) against payspoa's
// HAProxy and the emulated accounts; used by tests/integ/test-sdk-node.sh.
//
//   node flows.js SDK_DIR HAP_PORT RUN FLOWS CONCURRENCY MAX_RETRIES [PAUSE_MS]
//
// SDK_DIR holds node_modules/stripe. FLOWS flows run CONCURRENCY at a time, each in a
// loop, PAUSE_MS (default 0) between two flows (0: back to back, the load is what the SDK
// and the stack allow), with the
// SDK's maxNetworkRetries = MAX_RETRIES. Each flow checks what Stripe's documentation says
// it ends with and prints one line "FLOW <n> <kind> ok|bad <instance> <detail>"; at the
// end one line "SUMMARY {json}" with the attempts the SDK made (every HTTP attempt, seen
// by wrapping the SDK's own HTTP client, which it still drives), their statuses, and the
// retries. Exit status 0 when every flow ended as documented.
'use strict';

const path = require('path');
const [sdkDir, hapPort, run, nflows, conc, maxRetries, pauseMs] = process.argv.slice(2);
const Stripe = require(path.join(sdkDir, 'node_modules', 'stripe'));

const base = Stripe.createNodeHttpClient();
const statuses = {};        // HTTP status of every attempt -> count (0: no answer)
const attemptsByKey = {};   // Idempotency-Key -> attempts
const statusesByKey = {};   // Idempotency-Key -> status of each attempt, in order
let attempts = 0;
function seen(key, s) {
	statuses[s] = (statuses[s] || 0) + 1;
	if (key)
		(statusesByKey[key] = statusesByKey[key] || []).push(s);
}
// The SDK's own Node HTTP client, observed: every attempt's status is counted.
const observed = Object.create(base);
observed.makeRequest = function (host, port, p, method, headers, body, protocol, timeout) {
	const key = headers['Idempotency-Key'];
	attempts++;
	if (key)
		attemptsByKey[key] = (attemptsByKey[key] || 0) + 1;
	return base.makeRequest(host, port, p, method, headers, body, protocol, timeout).then(
		(res) => { seen(key, res.getStatusCode()); return res; },
		(err) => { seen(key, 0); throw err; });
};

const stripe = new Stripe('sk_test_payspoa_example', {
	host: '127.0.0.1', port: Number(hapPort), protocol: 'http',
	maxNetworkRetries: Number(maxRetries), httpClient: observed, timeout: 30000,
});

class Bad extends Error {}
function want(cond, what) { if (!cond) throw new Bad(what); }
const inst = (o) => o.payapi_instance;   // the emulator names the account in every body

// Each flow returns the account (emulator instance) that served it.
const flows = {
	// create, then confirm: succeeded, the money received, a charge.
	async confirm(i) {
		const pi = await stripe.paymentIntents.create({
			amount: 1000 + i, currency: i % 3 ? 'usd' : 'eur',
			payment_method_types: ['card'], metadata: { flow: String(i), run },
			expand: ['latest_charge'],
		});
		want(pi.object === 'payment_intent' && pi.status === 'requires_payment_method', `created: ${pi.status}`);
		const c = await stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_visa' });
		want(c.id === pi.id && c.status === 'succeeded' && c.amount_received === pi.amount &&
			/^ch_/.test(c.latest_charge || ''), `confirmed: ${c.status} ${c.amount_received}`);
		want(inst(c) === inst(pi), `confirm on ${inst(c)}, created on ${inst(pi)}`);
		return inst(pi);
	},
	// manual capture: requires_capture with the amount capturable, then captured.
	async capture(i) {
		const pi = await stripe.paymentIntents.create({
			amount: 2000 + i, currency: 'usd', payment_method: 'pm_card_visa',
			capture_method: 'manual', confirm: true,
		});
		want(pi.status === 'requires_capture' && pi.amount_capturable === pi.amount &&
			pi.amount_received === 0, `authorised: ${pi.status}`);
		const c = await stripe.paymentIntents.capture(pi.id);
		want(c.status === 'succeeded' && c.amount_received === pi.amount && c.amount_capturable === 0,
			`captured: ${c.status} ${c.amount_received}`);
		return inst(pi);
	},
	// refunds naming the payment: a partial one, the rest, then nothing left to refund;
	// the refunds listed by payment intent, page by page (the SDK's auto-pagination).
	async refund(i) {
		const pi = await stripe.paymentIntents.create({
			amount: 3000, currency: 'gbp', payment_method: 'pm_card_visa', confirm: true,
		});
		want(pi.status === 'succeeded', `paid: ${pi.status}`);
		const r1 = await stripe.refunds.create({ payment_intent: pi.id, amount: 1200 });
		want(r1.object === 'refund' && r1.status === 'succeeded' && r1.amount === 1200 &&
			r1.payment_intent === pi.id, `partial: ${r1.status} ${r1.amount}`);
		const r2 = await stripe.refunds.create({ payment_intent: pi.id });
		want(r2.status === 'succeeded' && r2.amount === 1800, `rest: ${r2.status} ${r2.amount}`);
		let err = null;
		try { await stripe.refunds.create({ payment_intent: pi.id }); } catch (e) { err = e; }
		want(err && err.type === 'StripeInvalidRequestError' && err.code === 'charge_already_refunded',
			`third refund: ${err ? err.type + ' ' + err.code : 'succeeded'}`);
		const all = await stripe.refunds.list({ payment_intent: pi.id, limit: 1 }).autoPagingToArray({ limit: 10 });
		want(all.length === 2 && all.every((r) => r.payment_intent === pi.id) &&
			all[0].id === r2.id && all[1].id === r1.id, `listed: ${all.map((r) => r.id)}`);
		return inst(pi);
	},
	// list calls: Stripe's list object.
	async list(i) {
		const l = await stripe.paymentIntents.list({ limit: 3 });
		want(l.object === 'list' && l.url === '/v1/payment_intents' && Array.isArray(l.data) &&
			l.data.length <= 3 && typeof l.has_more === 'boolean' &&
			l.data.every((p) => p.object === 'payment_intent'), 'list shape');
		const c = await stripe.charges.list({ limit: 2 });
		want(c.object === 'list' && c.data.every((x) => x.object === 'charge'), 'charges list');
		return inst(l);
	},
	// Connect: the connected account's payment exists for that account only.
	async connect(i) {
		const acct = `acct_1SDK${run}${i % 4}`;
		const pi = await stripe.paymentIntents.create(
			{ amount: 1500, currency: 'eur', payment_method: 'pm_card_visa', confirm: true },
			{ stripeAccount: acct });
		want(pi.status === 'succeeded', `connected payment: ${pi.status}`);
		const again = await stripe.paymentIntents.retrieve(pi.id, {}, { stripeAccount: acct });
		want(again.id === pi.id && inst(again) === inst(pi), `retrieve on ${inst(again)}`);
		let err = null;
		try { await stripe.paymentIntents.retrieve(pi.id); } catch (e) { err = e; }
		want(err && err.code === 'resource_missing' && err.statusCode === 404,
			`platform retrieve: ${err ? err.code : 'found'}`);
		return inst(pi);
	},
	// declines: a card error, never retried (Stripe-Should-Retry: false; a shed before it
	// may be), the intent back to requires_payment_method.
	async decline(i) {
		const pm = i % 2 ? 'pm_card_chargeDeclined' : 'pm_card_chargeDeclinedInsufficientFunds';
		const key = `sdk-${run}-decline-${i}`;
		let err = null;
		try {
			await stripe.paymentIntents.create({ amount: 4200, currency: 'usd', payment_method: pm, confirm: true },
				{ idempotencyKey: key });
		} catch (e) { err = e; }
		want(err && err.type === 'StripeCardError' && err.code === 'card_declined' &&
			err.decline_code === (i % 2 ? 'generic_decline' : 'insufficient_funds') &&
			err.raw.payment_intent && err.raw.payment_intent.status === 'requires_payment_method',
			`decline: ${err ? err.type + ' ' + err.code + ' ' + err.decline_code : 'succeeded'}`);
		const st = statusesByKey[key] || [];
		want(st[st.length - 1] === 402 && st.filter((x) => x === 402).length === 1,
			`a decline was retried: statuses ${st}`);
		return '-';
	},
	// an idempotent retry done by the SDK itself: the emulator drops the first attempt
	// (the key contains payapi-drop-first), HAProxy answers 502, the SDK retries with the
	// same key; one payment. The same call again replays it.
	async retry(i) {
		const key = `sdk-${run}-${i}-payapi-drop-first`;
		const params = { amount: 5000 + i, currency: i % 2 ? 'usd' : 'eur', payment_method: 'pm_card_visa', confirm: true };
		const pi = await stripe.paymentIntents.create(params, { idempotencyKey: key });
		want(pi.status === 'succeeded', `retried payment: ${pi.status}`);
		want(attemptsByKey[key] >= 2, `the first attempt was not retried (${attemptsByKey[key]} attempts)`);
		const again = await stripe.paymentIntents.create(params, { idempotencyKey: key });
		want(again.id === pi.id && again.lastResponse.headers['idempotent-replayed'] === 'true',
			`replay: ${again.id} vs ${pi.id}`);
		return inst(pi);
	},
};
const kinds = Object.keys(flows);

async function main() {
	const n = Number(nflows);
	let next = 0, bad = 0;
	const retried = { ok: {} };   // retry flows by the account that served them
	async function worker() {
		while (next < n) {
			const i = next++, kind = kinds[i % kinds.length];
			try {
				const where = await flows[kind](i);
				if (kind === 'retry')
					retried.ok[where] = (retried.ok[where] || 0) + 1;
				console.log(`FLOW ${i} ${kind} ok ${where}`);
			} catch (e) {
				bad++;
				const what = e instanceof Bad ? e.message : `${e.type || e.name}: ${e.statusCode || ''} ${e.code || ''} ${e.message}`;
				console.log(`FLOW ${i} ${kind} bad - ${what.replace(/\s+/g, ' ')}`);
			}
			if (Number(pauseMs) > 0)
				await new Promise((r) => setTimeout(r, Number(pauseMs)));
		}
	}
	const t0 = Date.now();
	await Promise.all(Array.from({ length: Number(conc) }, worker));
	const keyed = Object.values(attemptsByKey);
	console.log('SUMMARY ' + JSON.stringify({
		flows: n, bad, attempts, statuses, retry_flows_by_instance: retried.ok,
		keys: keyed.length, keys_retried: keyed.filter((a) => a > 1).length,
		max_attempts: Math.max(0, ...keyed), seconds: (Date.now() - t0) / 1000,
	}));
	process.exit(bad ? 1 : 0);
}
main();
