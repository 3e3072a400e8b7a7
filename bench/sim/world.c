/* world.c: draws a random world (backends, entities, truth, traffic, incidents, the
 * operator's policy with its wrong priors) from a world seed and writes it as a scenario
 * file and a policy file, so that a world is always something `payspoa-sim FILE` runs
 * alone. Only file output; no simulation here. The distributions are documented in
 * bench/sim/scenarios/README.md ("Random worlds"): keep the two in step. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "world.h"

#define WORLD_MAX_B   6
#define WORLD_MAX_SEG 8
#define WORLD_DURATION_S 600.0

/* splitmix64: the generator's own stream (independent of the simulator's coins). */
struct world_rng {
	uint64_t x;
};

static uint64_t world_next(struct world_rng *g)
{
	uint64_t z = (g->x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static double world_u(struct world_rng *g, double lo, double hi)
{
	return lo + (hi - lo) * ((double)(world_next(g) >> 11) * 0x1.0p-53);
}

/* Uniform integer in [lo, hi]. */
static int world_int(struct world_rng *g, int lo, int hi)
{
	return lo + (int)(world_next(g) % (uint64_t)(hi - lo + 1));
}

static bool world_coin(struct world_rng *g, double p)
{
	return world_u(g, 0, 1) < p;
}

/* Log-uniform in [lo, hi). */
static double world_logu(struct world_rng *g, double lo, double hi)
{
	return exp(world_u(g, log(lo), log(hi)));
}

static double world_clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

uint64_t world_seed(uint64_t seed, unsigned k)
{
	return seed * 1000000ULL + k;
}

/* The three card regions a world's entities and cards come from. */
static const char *const world_regions[3] = { "us", "eea", "uk" };
static const char *const world_home_cur[3] = { "usd", "eur", "gbp" };
static const char *const world_countries[3][2] = { { "US", "US" }, { "DE", "FR" }, { "GB", "GB" } };
static const char *const world_brands[3] = { "visa", "mastercard", "amex" };
static const char *const world_fundings[2] = { "credit", "debit" };
static const char *const world_kinds[6] = { "outage", "brownout", "latency", "auth_drift", "decline_storm",
	"rate_limit" };
static const char *const world_declines[5] = { "insufficient_funds", "generic_decline", "do_not_honor",
	"processing_error", "issuer_not_available" };

struct world_backend {
	int ent, acct;
	double pct, fixed, xb, fx;
	double auth, reg[3];            /* P(auth) by card region */
	int nbr;
	int br_reg[9], br_brand[9];     /* brand-in-region exceptions */
	double br_p[9];
	double lat, sigma, err, soft, load;
	double prior_auth, prior_lat;   /* the operator's day-one guesses (cold start) */
};

struct world_seg {
	int reg, brand, fund, cur;      /* cur: index into world_home_cur */
	const char *country;
	double share, amount, sigma;
};

/* Stripe's payment_intents endpoints a world may limit on every account (the classes'
 * requests: checkout and background create, capture, read retrieves), in the order the
 * policy lists them (first match wins: capture before retrieve's glob). */
#define WORLD_NEP 3
static const char *const world_ep_name[WORLD_NEP] = { "payment_intents.capture", "payment_intents.create",
	"payment_intents.retrieve" };
static const char *const world_ep_method[WORLD_NEP] = { "POST", "POST", "GET" };
static const char *const world_ep_path[WORLD_NEP] = { "/v1/payment_intents/*/capture", "/v1/payment_intents",
	"/v1/payment_intents/*" };

struct world {
	int nb, ne, nacct, nseg;
	double ep_rate[WORLD_NEP];      /* true per-endpoint limit on every account, 0 = none */
	int ent_reg[3];                 /* entity → region */
	double acct_rate[WORLD_MAX_B];
	struct world_backend b[WORLD_MAX_B];
	struct world_seg seg[WORLD_MAX_SEG];
	double rate;
};

static void world_draw(struct world *w, struct world_rng *g)
{
	int i, j, k, perm[3] = { 0, 1, 2 };

	memset(w, 0, sizeof(*w));
	w->nb = world_int(g, 2, WORLD_MAX_B);
	w->ne = world_int(g, 1, w->nb < 3 ? w->nb : 3);
	for (i = 2; i > 0; i--) {
		j = world_int(g, 0, i);
		k = perm[i];
		perm[i] = perm[j];
		perm[j] = k;
	}
	for (i = 0; i < w->ne; i++)
		w->ent_reg[i] = perm[i];
	w->rate = world_u(g, 40, 120);
	for (i = 0; i < w->nb; i++) {
		struct world_backend *b = &w->b[i];
		int r;

		b->ent = i < w->ne ? i : world_int(g, 0, w->ne - 1);
		b->acct = -1;
		/* an entity may run two "backends" on one account (two MIDs, one API key) */
		for (j = 0; j < i && b->acct < 0; j++)
			if (w->b[j].ent == b->ent && world_coin(g, 0.3))
				b->acct = w->b[j].acct;
		if (b->acct < 0)
			b->acct = w->nacct++;
		b->pct = world_u(g, 1.2, 3.2);
		b->fixed = world_u(g, 0, 35);
		b->xb = world_u(g, 0.5, 2.0);
		b->fx = world_u(g, 0.5, 2.0);
		b->auth = world_u(g, 0.85, 0.95);
		for (r = 0; r < 3; r++)
			b->reg[r] = world_clamp(r == w->ent_reg[b->ent] ? b->auth + world_u(g, 0, 0.05)
			                                                  : b->auth - world_u(g, 0, 0.08), 0.5, 0.99);
		for (r = 0; r < 3; r++)
			for (k = 0; k < 3; k++)
				if (world_coin(g, 0.15)) {
					b->br_reg[b->nbr] = r;
					b->br_brand[b->nbr] = k;
					b->br_p[b->nbr++] = world_clamp(b->reg[r] + world_u(g, -0.05, 0.05), 0.5, 0.99);
				}
		b->lat = world_logu(g, 120, 900);
		b->sigma = world_coin(g, 0.3) ? world_u(g, 0.8, 1.2) : world_u(g, 0.2, 0.6);
		b->err = world_u(g, 0, 0.004);
		b->soft = world_u(g, 0.4, 0.8);
		b->load = world_coin(g, 0.3) ? world_u(g, 1, 5) : 0;
		b->prior_auth = world_u(g, 0.80, 0.95);
		b->prior_lat = b->lat * world_logu(g, 0.5, 2.0);
	}
	/* A fee crossover: one backend cheap in percent and dear in fixed fees, another the
	 * reverse, so small payments belong to one and large ones to the other. */
	if (world_coin(g, 0.5)) {
		i = world_int(g, 0, w->nb - 1);
		j = (i + world_int(g, 1, w->nb - 1)) % w->nb;
		w->b[i].pct = world_u(g, 1.2, 1.6);
		w->b[i].fixed = world_u(g, 35, 50);
		w->b[j].pct = world_u(g, 2.6, 3.2);
		w->b[j].fixed = world_u(g, 0, 10);
	}
	for (i = 0; i < w->nacct; i++)
		w->acct_rate[i] = world_coin(g, 0.7) ? w->rate * world_u(g, 2, 4) : w->rate * world_u(g, 0.6, 1.2);
	w->nseg = world_int(g, 3, WORLD_MAX_SEG);
	for (i = 0; i < w->nseg; i++) {
		struct world_seg *s = &w->seg[i];

		s->reg = world_int(g, 0, 2);
		s->brand = world_int(g, 0, 2);
		s->fund = world_int(g, 0, 1);
		s->cur = world_coin(g, 0.85) ? s->reg : 0;
		s->country = world_countries[s->reg][world_int(g, 0, 1)];
		s->share = world_u(g, 0.2, 1);
		s->amount = world_logu(g, 1000, 40000);
		s->sigma = world_u(g, 0.4, 1.1);
	}
}

/* True per-endpoint limits (drawn from the second stream, `g2`, so that the draws of
 * the first stay as they were before this feature): with probability 0.4 a world
 * limits each of create, capture and retrieve with probability 0.5 (at least one), at
 * one rate on every account (as Stripe's defaults: 25/s per endpoint against 100/s per
 * account, the same for all) of 0.25-1 × the smallest account's rate (0.25: Stripe's
 * default ratio; up to 1: an endpoint Stripe raised to the account's limit). */
static void world_draw_endpoints(struct world *w, struct world_rng *g2)
{
	double lo = w->acct_rate[0];
	int i, n = 0;

	if (!world_coin(g2, 0.4))
		return;
	for (i = 1; i < w->nacct; i++)
		if (w->acct_rate[i] < lo)
			lo = w->acct_rate[i];
	for (i = 0; i < WORLD_NEP; i++)
		if (world_coin(g2, 0.5))
			w->ep_rate[i] = lo * world_u(g2, 0.25, 1), n++;
	if (!n)
		w->ep_rate[0] = lo * world_u(g2, 0.25, 1);
}

static void world_put_policy(FILE *f, const struct world *w, uint64_t wseed, const char *learning)
{
	int i, n;

	fprintf(f, "# world-%llu-policy.conf: the policy payspoa runs with in random world %llu\n"
	           "# (payspoa-sim --print-world). The fee schedules are the contracts (the truth);\n"
	           "# auth_rate and latency_ms are an operator's wrong day-one guesses.\n\n",
	        (unsigned long long)wseed, (unsigned long long)wseed);
	fprintf(f, "agent = { listen = [ \"127.0.0.1:12345\" ]; workers = 1; log_level = \"warning\"; };\n\n"
	           "regions = {\n"
	           "\tus  = [ \"US\", \"PR\", \"GU\", \"VI\", \"AS\", \"MP\" ];\n"
	           "\teea = [ \"AT\", \"BE\", \"BG\", \"HR\", \"CY\", \"CZ\", \"DK\", \"EE\", \"FI\", \"FR\", \"DE\", \"GR\", \"HU\",\n"
	           "\t        \"IE\", \"IT\", \"LV\", \"LT\", \"LU\", \"MT\", \"NL\", \"PL\", \"PT\", \"RO\", \"SK\", \"SI\", \"ES\",\n"
	           "\t        \"SE\", \"IS\", \"LI\", \"NO\" ];\n"
	           "\tuk  = [ \"GB\" ];\n};\n\n"
	           "classes = (\n"
	           "\t{ name = \"checkout\";   priority = -100; offset_ms = 0;    reserve = 0.20; shed_order = 4; queue_ms = 0; },\n"
	           "\t{ name = \"capture\";    priority = -50;  offset_ms = 0;    reserve = 0.10; shed_order = 3; queue_ms = 0; },\n"
	           "\t{ name = \"read\";       priority = 100;  offset_ms = 500;  shed_order = 2; queue_ms = 0; },\n"
	           "\t{ name = \"background\"; priority = 200;  offset_ms = 1000; shed_order = 1; queue_ms = 0; }\n);\n\n"
	           "classify = {\n\tdefault = \"read\";\n\ttrust_hints = true;\n\trules = (\n"
	           "\t\t{ hint = \"background\"; class = \"background\"; },\n"
	           "\t\t{ method = \"POST\"; path = \"/v1/payment_intents\"; class = \"checkout\"; },\n"
	           "\t\t{ method = \"POST\"; path = \"/v1/payment_intents/*/capture\"; class = \"capture\"; },\n"
	           "\t\t{ method = \"GET\"; class = \"read\"; }\n\t);\n};\n\n"
	           "pinning = { idem_ttl_s = 86400; idem_slots = 262144; object_ttl_s = 86400; object_slots = 262144;\n"
	           "            object_prefixes = [ \"pi_\" ]; };\n\n"
	           "scoring = { nominal_amount = 5000; latency_cost = 0.05; load_cost = 20.0; };\n\n");
	if (learning)
		fprintf(f, "learning = { %s };\n\n", learning);
	fprintf(f, "fee_schedules = (\n");
	for (i = 0; i < w->nb; i++)
		fprintf(f, "\t{ name = \"fees%d\"; percent = %.4f; fixed = %.2f; cross_border = %.4f; fx = %.4f; }%s\n", i,
		        w->b[i].pct, w->b[i].fixed, w->b[i].xb, w->b[i].fx, i + 1 < w->nb ? "," : "");
	fprintf(f, ");\n\nbackends = (\n");
	for (i = 0; i < w->nb; i++) {
		const struct world_backend *b = &w->b[i];

		fprintf(f, "\t{ name = \"psp%d\"; account = \"acct%d\"; entity = \"ent%d\"; region = \"%s\";\n"
		           "\t  currencies = [ \"usd\", \"eur\", \"gbp\" ]; settlement = [ \"%s\" ];\n"
		           "\t  fee_schedule = \"fees%d\"; latency_ms = %.0f; auth_rate = %.3f; }%s\n",
		        i, b->acct, b->ent, world_regions[w->ent_reg[b->ent]], world_home_cur[w->ent_reg[b->ent]], i,
		        b->prior_lat, b->prior_auth, i + 1 < w->nb ? "," : "");
	}
	fprintf(f, ");\ndefault_backend = \"psp0\";\n\n");
	/* The operator knows Stripe's documented limit of each account: the budgets match the
	 * true limits (a rate-limit incident is what they do not know). */
	fprintf(f, "throttle = {\n\taccount = { rate = %.1f; burst = %.1f; };\n\tendpoint = { rate = %.1f; burst = %.1f; };\n"
	           "\taccounts = (\n", w->acct_rate[0], w->acct_rate[0], w->acct_rate[0], w->acct_rate[0]);
	for (i = 0; i < w->nacct; i++)
		fprintf(f, "\t\t{ account = \"acct%d\"; rate = %.1f; burst = %.1f; }%s\n", i, w->acct_rate[i],
		        w->acct_rate[i], i + 1 < w->nacct ? "," : "");
	fprintf(f, "\t);\n");
	/* and its documented per-endpoint limits, Stripe's endpoint names */
	for (i = 0, n = 0; i < WORLD_NEP; i++)
		if (w->ep_rate[i] > 0)
			fprintf(f, "%s\t\t{ name = \"%s\"; method = \"%s\"; path = \"%s\"; rate = %.1f; burst = %.1f; }",
			        n++ ? ",\n" : "\tendpoints = (\n", world_ep_name[i], world_ep_method[i], world_ep_path[i],
			        w->ep_rate[i], w->ep_rate[i]);
	fprintf(f, "%s};\n", n ? "\n\t);\n" : "");
}

/* The true per-endpoint limits: each drawn endpoint on every account. */
static void world_put_endpoints(FILE *f, const struct world *w)
{
	int i, a, n = 0;

	for (i = 0; i < WORLD_NEP; i++)
		for (a = 0; w->ep_rate[i] > 0 && a < w->nacct; a++)
			fprintf(f, "%s\t{ account = \"acct%d\"; method = \"%s\"; path = \"%s\"; rate = %.1f; burst = %.1f; }",
			        n++ ? ",\n" : "endpoint_limits = (\n", a, world_ep_method[i], world_ep_path[i], w->ep_rate[i],
			        w->ep_rate[i]);
	if (n)
		fprintf(f, "\n);\n\n");
}

/* A segment-scoped match: one field of a random segment of the world. */
static void world_scope(struct world_rng *g, const struct world *w, char *m, size_t n)
{
	const struct world_seg *s = &w->seg[world_int(g, 0, w->nseg - 1)];

	switch (world_int(g, 0, 3)) {
	case 0:  snprintf(m, n, "%s/*/*/*", world_home_cur[s->cur]); break;
	case 1:  snprintf(m, n, "*/%s/*/*", world_regions[s->reg]); break;
	case 2:  snprintf(m, n, "*/*/%s/*", world_brands[s->brand]); break;
	default: snprintf(m, n, "*/*/*/%s", world_fundings[s->fund]); break;
	}
}

static void world_put_incidents(FILE *f, struct world_rng *g, struct world_rng *g2, const struct world *w)
{
	int n = world_coin(g, 0.25) ? 0 : world_int(g, 1, 3), i;

	fprintf(f, "incidents = (\n");
	for (i = 0; i < n; i++) {
		int kind = world_int(g, 0, 5), b = world_int(g, 0, w->nb - 1);
		double start = WORLD_DURATION_S * world_u(g, 0.15, 0.75), len = world_u(g, 30, 150), end;
		char match[64] = "";

		end = start + len < WORLD_DURATION_S - 10 ? start + len : WORLD_DURATION_S - 10;
		if (kind != 5 && world_coin(g, 0.4))
			world_scope(g, w, match, sizeof(match));
		fprintf(f, "\t{ name = \"i%d-%s\"; kind = \"%s\"; ", i, world_kinds[kind], world_kinds[kind]);
		if (kind != 4 || world_coin(g, 0.5))
			fprintf(f, "backend = \"psp%d\"; ", b);
		fprintf(f, "start_s = %.1f; end_s = %.1f;", start, end);
		if (match[0])
			fprintf(f, " match = \"%s\";", match);
		switch (kind) {
		case 0:
			fprintf(f, " mode = \"%s\";", world_coin(g, 0.5) ? "503" : "timeout");
			break;
		case 1:
			fprintf(f, " error_rate = %.3f;", world_u(g, 0.1, 0.6));
			break;
		case 2:
			fprintf(f, " factor = %.2f;", world_u(g, 2, 8));
			break;
		case 3:
			fprintf(f, " to = %.3f;", world_u(g, 0.6, 0.85));
			/* half the drifts carry a code of their own: soft or the issuer's side, never
			 * the customer's (a card does not lack funds on one acquirer only) */
			if (world_coin(g2, 0.5))
				fprintf(f, " decline = \"%s\";", world_declines[world_int(g2, 1, 4)]);
			break;
		case 4:
			fprintf(f, " factor = %.3f; decline = \"%s\";", world_u(g, 0.4, 0.85), world_declines[world_int(g, 0, 4)]);
			break;
		default:
			fprintf(f, " rate = %.1f;", w->acct_rate[w->b[b].acct] * world_u(g, 0.3, 0.7));
			break;
		}
		if ((kind == 1 || kind == 2 || kind == 4 || kind == 5) && world_coin(g, 0.3))
			fprintf(f, " ramp_s = %.1f;", (end - start) * world_u(g, 0.2, 1.0));
		fprintf(f, " }%s\n", i + 1 < n ? "," : "");
	}
	fprintf(f, ");\n");
}

static void world_put_scenario(FILE *f, struct world_rng *g, struct world_rng *g2, const struct world *w,
                               uint64_t wseed)
{
	int i, r, k;

	fprintf(f, "# world-%llu.conf: random world %llu (payspoa-sim --print-world %llu; the\n"
	           "# distributions are in bench/sim/scenarios/README.md, \"Random worlds\").\n",
	        (unsigned long long)wseed, (unsigned long long)wseed, (unsigned long long)wseed);
	fprintf(f, "name = \"world-%llu\";\ndescription = \"random world: %d backends over %d entities\";\n"
	           "policy = \"world-%llu-policy.conf\";\nseed = %llu;\nduration_s = %.1f;\n"
	           "headline = \"checkout_success\";\nprimary = \"psp0\";\n\n"
	           "currencies = { usd = 1.0; eur = 1.08; gbp = 1.27; };\n\nbackends = (\n",
	        (unsigned long long)wseed, w->nb, w->ne, (unsigned long long)wseed, (unsigned long long)wseed,
	        WORLD_DURATION_S);
	for (i = 0; i < w->nb; i++) {
		const struct world_backend *b = &w->b[i];

		fprintf(f, "\t{\n\t\tname = \"psp%d\"; account = \"acct%d\"; region = \"%s\";\n"
		           "\t\tcurrencies = [ \"usd\", \"eur\", \"gbp\" ]; settlement = [ \"%s\" ];\n"
		           "\t\tfees = { percent = %.4f; fixed = %.2f; cross_border = %.4f; fx = %.4f; };\n"
		           "\t\tauth = %.4f;\n\t\tauth_rules = (\n",
		        i, b->acct, world_regions[w->ent_reg[b->ent]], world_home_cur[w->ent_reg[b->ent]], b->pct, b->fixed,
		        b->xb, b->fx, b->auth);
		for (k = 0; k < b->nbr; k++)
			fprintf(f, "\t\t\t{ match = \"*/%s/%s/*\"; p = %.4f; },\n", world_regions[b->br_reg[k]],
			        world_brands[b->br_brand[k]], b->br_p[k]);
		for (r = 0; r < 3; r++)
			fprintf(f, "\t\t\t{ match = \"*/%s/*/*\"; p = %.4f; }%s\n", world_regions[r], b->reg[r], r < 2 ? "," : "");
		fprintf(f, "\t\t);\n\t\tlatency_ms = %.1f; latency_sigma = %.3f; timeout_ms = 8000; latency_load_ms = %.2f;\n"
		           "\t\terror_rate = %.4f; soft_declines = %.3f;\n"
		           "\t\trate_limit = { rate = %.1f; burst = %.1f; };\n\t}%s\n",
		        b->lat, b->sigma, b->load, b->err, b->soft, w->acct_rate[b->acct], w->acct_rate[b->acct],
		        i + 1 < w->nb ? "," : "");
	}
	fprintf(f, ");\n\ntraffic = {\n\trate = %.2f;\n", w->rate);
	if (world_coin(g, 0.25)) {
		double s = WORLD_DURATION_S * world_u(g, 0.2, 0.7);

		fprintf(f, "\tsurges = ( { start_s = %.1f; end_s = %.1f; ramp_s = 10.0; factor = %.2f; } );\n", s,
		        s + world_u(g, 30, 90), world_u(g, 1.5, 3));
	}
	fprintf(f, "\tretry = { share = 0.6; max = 3; backoff_s = 1.0; };\n"
	           "\tclasses = (\n"
	           "\t\t{ name = \"checkout\";   share = 0.70; kind = \"charge\"; path = \"/v1/payment_intents\"; },\n"
	           "\t\t{ name = \"capture\";    share = 0.12; kind = \"object\"; path = \"/v1/payment_intents/{id}/capture\"; },\n"
	           "\t\t{ name = \"read\";       share = 0.10; kind = \"object\"; method = \"GET\"; path = \"/v1/payment_intents/{id}\"; },\n"
	           "\t\t{ name = \"background\"; share = 0.08; kind = \"charge\"; path = \"/v1/payment_intents\"; hint = \"background\"; }\n"
	           "\t);\n\tsegments = (\n");
	for (i = 0; i < w->nseg; i++) {
		const struct world_seg *s = &w->seg[i];

		fprintf(f, "\t\t{ currency = \"%s\"; country = \"%s\"; region = \"%s\"; brand = \"%s\"; funding = \"%s\"; "
		           "share = %.3f; amount = %.0f; amount_sigma = %.3f; }%s\n",
		        world_home_cur[s->cur], s->country, world_regions[s->reg], world_brands[s->brand],
		        world_fundings[s->fund], s->share, s->amount, s->sigma, i + 1 < w->nseg ? "," : "");
	}
	fprintf(f, "\t);\n};\n\n");
	world_put_endpoints(f, w);
	world_put_incidents(f, g, g2, w);
}

static int world_file(const char *dir, const char *name, char *path, size_t n, FILE **f, char *err, size_t errlen)
{
	if ((size_t)snprintf(path, n, "%s/%s", dir, name) >= n) {
		snprintf(err, errlen, "%s/%s: path too long", dir, name);
		return -1;
	}
	if (!(*f = fopen(path, "w"))) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int world_close(FILE *f, const char *path, char *err, size_t errlen)
{
	if (ferror(f) | fclose(f)) {
		snprintf(err, errlen, "%s: write failed", path);
		return -1;
	}
	return 0;
}

int world_write(uint64_t wseed, const char *learning, const char *dir, char *path, size_t n, char *err, size_t errlen)
{
	struct world_rng g = { wseed ^ 0x5eed0f3077a11ULL };
	struct world_rng g2 = { wseed ^ 0x5eed0f3077a12ULL }; /* features added later: endpoint limits, drift codes */
	struct world w;
	char name[64], ppath[1024];
	FILE *f;

	world_draw(&w, &g);
	world_draw_endpoints(&w, &g2);
	snprintf(name, sizeof(name), "world-%llu-policy.conf", (unsigned long long)wseed);
	if (world_file(dir, name, ppath, sizeof(ppath), &f, err, errlen))
		return -1;
	world_put_policy(f, &w, wseed, learning);
	if (world_close(f, ppath, err, errlen))
		return -1;
	snprintf(name, sizeof(name), "world-%llu.conf", (unsigned long long)wseed);
	if (world_file(dir, name, path, n, &f, err, errlen))
		return -1;
	world_put_scenario(f, &g, &g2, &w, wseed);
	return world_close(f, path, err, errlen);
}
