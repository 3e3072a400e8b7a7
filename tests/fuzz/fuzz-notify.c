/* fuzz-notify.c: agent_notify (spoa/agent.c) on arbitrary NOTIFY payloads, with a real
 * engine built once from conf/payspoa.conf ($PAYSPOA_CONF), into a window as small as a
 * 256-byte frame or as large as ours.
 * Input: 1 byte picks the window size, the rest is the payload.
 * Invariants: never a write past the window; when agent_notify succeeds without
 * overflow, the actions decode entirely into ≥ 1 txn set-var with names that fit. */
#include <stdint.h>
#include <string.h>

#include "agent.h"
#include "fuzz-check.h"
#include "spop.h"
#include "policy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pol_engine *engine;
static uint64_t now_us = 1000000;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	engine = fuzz_engine_load("fuzz-notify");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[16384 + 64];
	struct agent a;
	struct spop_wbuf w;
	size_t win;
	uint8_t *guard;
	int r;

	if (size < 1)
		return 0;
	/* 0..15: 256-byte frames minus a header, up to 16 KiB */
	win = data[0] < 128 ? 230 + (size_t)(data[0] % 64) : 256 + (size_t)(data[0] - 128) * 126;
	data++;
	size--;
	memset(&a, 0, sizeof(a));
	a.engine = engine;
	a.now_us = now_us += 997;
	guard = buf + win;
	memset(guard, 0xa5, 64);
	w = spop_wbuf_init(buf, win);
	r = agent_notify(&a, data, data + size, &w);
	FUZZ_ASSERT(w.p >= buf && w.p <= buf + win);
	for (int i = 0; i < 64; i++)
		FUZZ_ASSERT(guard[i] == 0xa5);
	if (r == 0 && !w.overflow)
		fuzz_check_ack_payload(buf, (size_t)(w.p - buf));
	pol_quiesce(engine, 0);
	return 0;
}
