/* cost.c: fee computation from a backend's fee schedule (percentage, fixed, cross-border,
 * FX, IC++ rows by card region and funding). Pure arithmetic on the decision path. */
#include <stddef.h>

#include "cost.h"

double cost_fee(const struct pol_fee *f, const struct pol_backend *b, double amount,
                unsigned region, unsigned funding, int cur)
{
	const struct pol_fee_rate *row = NULL;
	double pct = f->pct, fixed = f->fixed;
	int i;

	for (i = 0; i < f->nrates; i++) {
		const struct pol_fee_rate *r = &f->rates[i];

		if ((r->region == POL_REGION_ANY || r->region == region) &&
		    (r->funding == POL_FUND_ANY || r->funding == funding)) {
			row = r;
			pct = r->pct;
			if (r->has_fixed)
				fixed = r->fixed;
			break;
		}
	}
	if (region != POL_REGION_UNKNOWN && region != b->region && !(row && row->all_in))
		pct += f->cross_border_pct;
	if (cur >= 0 && !(b->settlement & (1ULL << cur)))
		pct += f->fx_pct;
	return amount * pct / 100.0 + fixed;
}
