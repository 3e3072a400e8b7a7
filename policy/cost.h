/* cost.h: the fee a backend charges for a payment, from its fee schedule. Pure. */
#ifndef COST_H
#define COST_H

#include "policy-t.h"

/* Fee in minor units for `amount` (minor units) in currency index `cur` (-1 unknown),
 * by a card of `region` (POL_REGION_*) and `funding` (enum pol_funding), on backend b
 * with schedule f:
 *   percent = the first fee row matching (region, funding), else the schedule's base;
 *           + cross_border when the card's region is known and differs from b's region
 *             (unless the row is all_in);
 *           + fx when the currency is known and b does not settle in it;
 *   fee     = amount × percent / 100 + fixed (the row's fixed if it has one). */
double cost_fee(const struct pol_fee *f, const struct pol_backend *b, double amount,
                unsigned region, unsigned funding, int cur);

#endif /* COST_H */
